"""`diffuser-ros` command line: the core's train / sample / plot / export, plus the commands that need
ROS tooling.

  diffuser-ros dataset from-bag run.mcap --state odom --command cmd_vel [--goal goal_pose]
      --state-kind odometry --state-fields x y velocity_x velocity_y
      --command-kind twist --command-fields linear_x angular_z --rate 10 --out data/run.hdf5
  diffuser-ros dataset from-bag rosbag2_dir --scenario maze2d_umaze --command cmd_accel --out data/run.hdf5
"""
from __future__ import annotations

import argparse

from diffuser_core import cli as core_cli
from diffuser_ros.robot_messages import COMMAND_KINDS, STATE_KINDS, CommandMapping, StateMapping

MAPPING_KEYS = ("state_kind", "state_fields", "command_kind", "command_fields", "rate")


def add_dataset_commands(commands) -> None:
    """The `dataset` command group: `from-bag` turns a ROS recording into a training set."""
    dataset = commands.add_parser("dataset", help="make training sets from robot data")
    kinds = dataset.add_subparsers(dest="dataset_command", required=True)
    from_bag = kinds.add_parser("from-bag", help="a ROS 2 recording (MCAP file or rosbag2 directory) as a "
                                                 "D4RL-layout hdf5 of episodes at the control rate")
    from_bag.add_argument("bag", help="an .mcap file or a rosbag2 directory (metadata.yaml + .db3 or .mcap)")
    from_bag.add_argument("--state", dest="state_topic", metavar="TOPIC",
                          help="state topic (default: the state kind's, odom or joint_states)")
    from_bag.add_argument("--command", dest="command_topic", metavar="TOPIC",
                          help="command topic (default: the command kind's, e.g. cmd_vel)")
    from_bag.add_argument("--goal", dest="goal_topic", metavar="TOPIC",
                          help="goal topic (geometry_msgs/PoseStamped, e.g. goal_pose): a new goal starts an "
                               "episode; stored per step as infos/goal")
    from_bag.add_argument("--scenario", help="scenario name or file: the kinds, fields and rate (1 / plan_dt) "
                                             "of its diffuser_planner; the flags below override it")
    from_bag.add_argument("--state-kind", choices=tuple(STATE_KINDS))
    from_bag.add_argument("--state-fields", nargs="+", help="state fields in order (odometry: x y yaw cos_yaw "
                                                            "sin_yaw velocity_x ...; joint_state: position:<joint>)")
    from_bag.add_argument("--command-kind", choices=tuple(COMMAND_KINDS))
    from_bag.add_argument("--command-fields", nargs="+", help="command fields in order (linear_x angular_z ...; "
                                                              "joint_trajectory: joint names)")
    from_bag.add_argument("--rate", type=float, help="control rate in Hz: one row per tick")
    from_bag.add_argument("--max-gap", type=float, default=0.5,
                          help="s: a state or command silence longer than this ends an episode (default 0.5)")
    from_bag.add_argument("--min-steps", type=int, default=2, help="drop shorter episodes (default 2)")
    from_bag.add_argument("--hold-state", action="store_true",
                          help="take the latest state at or before each tick (default: interpolate)")
    from_bag.add_argument("--out", required=True, help="the .hdf5 to write")
    from_bag.set_defaults(run=run_from_bag)


def build_parser() -> argparse.ArgumentParser:
    """The core parser with the ROS commands added."""
    return core_cli.build_parser(add_commands=add_dataset_commands)


def conversion_settings(args):
    """ConversionSettings from the flags, the scenario's planner mapping filling what they leave out."""
    from diffuser_ros.recordings import ConversionSettings, scenario_mapping

    chosen = scenario_mapping(args.scenario) if args.scenario else {}
    chosen.update({key: getattr(args, key) for key in MAPPING_KEYS if getattr(args, key) is not None})
    missing = [f"--{key.replace('_', '-')}" for key in MAPPING_KEYS if key not in chosen]
    if missing:
        raise ValueError(f"give {', '.join(missing)} (or --scenario, whose planner settings name them)")
    state = StateMapping(chosen["state_kind"], tuple(chosen["state_fields"]))
    command = CommandMapping(chosen["command_kind"], tuple(chosen["command_fields"]))
    return ConversionSettings(state_topic=args.state_topic or state.topic,
                              command_topic=args.command_topic or command.topic,
                              state=state, command=command, rate=float(chosen["rate"]), goal_topic=args.goal_topic,
                              max_gap=args.max_gap, min_steps=args.min_steps,
                              interpolate_state=not args.hold_state)


def run_from_bag(args) -> None:
    """Convert the recording, write the hdf5 and print what it holds."""
    from diffuser_ros.recordings import convert_recording

    print(convert_recording(args.bag, conversion_settings(args), args.out).text())


def main(argv=None) -> int:
    """Entry point of the `diffuser-ros` console script."""
    return core_cli.main(argv, build_parser())


if __name__ == "__main__":
    raise SystemExit(main())
