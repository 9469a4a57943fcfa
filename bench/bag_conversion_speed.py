"""How fast `diffuser-ros dataset from-bag` turns a recording into a training set: a synthetic run of a
wheeled robot (odom at 50 Hz with pose and twist, cmd_vel at 10 Hz, a goal_pose every 20 s) written as a
bare MCAP file and as a rosbag2 directory (sqlite3), each converted at 10 Hz, best of the repeats.
Writes results/bag_conversion_speed.json + .md.

  python bench/bag_conversion_speed.py [--minutes 10] [--repeats 3] [--seed 0]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import (Target, git_commit, machine_info, machine_line, run_cli, targets_table,  # noqa: E402
                           write_report)

STATE_RATE, COMMAND_RATE, GOAL_PERIOD = 50.0, 10.0, 20.0
START = 1_700_000_000.0  # s: header stamps of a wall-clock recording
TARGET_S = 30.0  # a 10-minute recording converts within this on a 2-core machine
STATE_FIELDS = ("x", "y", "yaw", "cos_yaw", "sin_yaw", "velocity_x", "velocity_y")
COMMAND_FIELDS = ("linear_x", "angular_z")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic recording")
    parser.add_argument("--repeats", type=int, default=3, help="conversions per format; the best is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "bag_conversion_speed.json"))
    return parser


def synthetic_run(minutes: float, seed: int) -> list[tuple[str, object, float]]:
    """(topic, message, log time s) of a unicycle driven by random cmd_vel, its odom and its goals."""
    from geometry_msgs.msg import PoseStamped, Twist
    from nav_msgs.msg import Odometry

    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    commands = np.stack([rng.uniform(0.0, 1.0, int(duration * COMMAND_RATE)),
                         rng.uniform(-1.0, 1.0, int(duration * COMMAND_RATE))], axis=1)
    messages = []
    for index, (linear, angular) in enumerate(commands):
        twist = Twist()
        twist.linear.x, twist.angular.z = float(linear), float(angular)
        messages.append(("/cmd_vel", twist, START + index / COMMAND_RATE))
    x = y = yaw = 0.0
    for step in range(int(duration * STATE_RATE)):
        seconds = step / STATE_RATE
        linear, angular = commands[min(int(seconds * COMMAND_RATE), len(commands) - 1)]
        odom = Odometry()
        stamped(odom, START + seconds, "odom")
        odom.child_frame_id = "base_link"
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(linear), float(angular)
        messages.append(("/odom", odom, START + seconds + 0.001))
        x, y = x + linear * math.cos(yaw) / STATE_RATE, y + linear * math.sin(yaw) / STATE_RATE
        yaw += angular / STATE_RATE
    for index in range(int(duration / GOAL_PERIOD)):
        goal = PoseStamped()
        stamped(goal, START + index * GOAL_PERIOD, "map")
        goal.pose.position.x, goal.pose.position.y = rng.uniform(-5.0, 5.0, 2).tolist()
        messages.append(("/goal_pose", goal, START + index * GOAL_PERIOD))
    return sorted(messages, key=lambda item: item[2])


def stamped(message, seconds: float, frame_id: str) -> None:
    """Set a message's header stamp and frame."""
    sec = math.floor(seconds)
    message.header.stamp.sec, message.header.stamp.nanosec = sec, min(round((seconds - sec) * 1e9), 999_999_999)
    message.header.frame_id = frame_id


def type_name(message) -> str:
    return f"{type(message).__module__.split('.')[0]}/msg/{type(message).__name__}"


def write_mcap(path: Path, messages) -> Path:
    """The messages as the recorder writes them: ROS 2 profile, CDR, ros2msg schemas."""
    from mcap.writer import Writer
    from rclpy.serialization import serialize_message

    from diffuser_ros.topics import schema_text

    with open(path, "wb") as file:
        writer = Writer(file)
        writer.start(profile="ros2", library="bench")
        channels = {}
        for sequence, (topic, message, seconds) in enumerate(messages):
            if topic not in channels:
                name = type_name(message)
                schema = writer.register_schema(name.replace("/msg/", "/"), "ros2msg", schema_text(name).encode())
                channels[topic] = writer.register_channel(topic, "cdr", schema)
            nanoseconds = round(seconds * 1e9)
            writer.add_message(channels[topic], log_time=nanoseconds, data=serialize_message(message),
                               publish_time=nanoseconds, sequence=sequence)
        writer.finish()
    return path


def write_rosbag2(path: Path, messages) -> Path:
    """The messages as a rosbag2 directory with sqlite3 storage (rosbags' writer)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    with Writer(path, version=9) as writer:
        connections = {}
        for topic, message, seconds in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, type_name(message), typestore=typestore)
            writer.write(connections[topic], round(seconds * 1e9), serialize_message(message))
    return path


def time_conversion(bag: Path, out: Path, repeats: int) -> tuple[list[float], str]:
    """Wall seconds of each `diffuser-ros dataset from-bag` run (in this process) and its summary."""
    from diffuser_ros.cli import main

    argv = ["dataset", "from-bag", str(bag), "--state", "odom", "--command", "cmd_vel", "--goal", "goal_pose",
            "--state-kind", "odometry", "--state-fields", *STATE_FIELDS, "--command-kind", "twist",
            "--command-fields", *COMMAND_FIELDS, "--rate", str(COMMAND_RATE), "--out", str(out)]
    seconds = []
    for _ in range(repeats):
        printed = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            code = main(argv)
        seconds.append(time.perf_counter() - started)
        if code != 0:
            raise RuntimeError(f"from-bag failed on {bag}")
    return seconds, printed.getvalue().strip()


def run(args, command: str) -> dict:
    """Write the recording in both formats, time the conversions, and report them."""
    from diffuser_core.data.datasets import load_hdf5_episodes

    messages = synthetic_run(args.minutes, args.seed)
    topics = [topic for topic, _, _ in messages]
    counts = {topic: topics.count(topic) for topic in ("/odom", "/cmd_vel", "/goal_pose")}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for label, bag in (("MCAP file", write_mcap(folder / "run.mcap", messages)),
                           ("rosbag2 (sqlite3)", write_rosbag2(folder / "run_rosbag2", messages))):
            out = folder / f"{bag.stem}.hdf5"
            seconds, summary = time_conversion(bag, out, args.repeats)
            episodes = load_hdf5_episodes(str(out))
            rows.append({"format": label, "best_s": min(seconds), "all_s": seconds, "episodes": len(episodes),
                         "steps": sum(len(e) for e in episodes), "summary": summary.replace(str(folder), "<tmp>")})
            print(f"{label}: best {min(seconds):.2f} s of {[round(s, 2) for s in seconds]}", flush=True)
    slowest = max(row["best_s"] for row in rows)
    targets = [Target(f"{args.minutes:g}-minute recording converts", f"< {TARGET_S:g} s (each format, best of "
                      f"{args.repeats})", f"{slowest:.2f} s", slowest < TARGET_S)]
    record = {"benchmark": "bag_conversion_speed", "minutes": args.minutes, "seed": args.seed,
              "repeats": args.repeats, "rate_hz": COMMAND_RATE, "messages": counts, "rows": rows,
              "targets": [t.to_dict() for t in targets], "command": command, "machine": machine_info("cpu"),
              "git_commit": git_commit()}
    write_report(args.out, record, markdown(record, targets))
    return record


def markdown(record: dict, targets: list[Target]) -> str:
    counts = ", ".join(f"{topic} {count}" for topic, count in record["messages"].items())
    lines = ["# Recording to training set (`bench/bag_conversion_speed.py`)", "",
             f"A synthetic {record['minutes']:g}-minute run (seed {record['seed']}; messages: {counts}) converted "
             f"by `diffuser-ros dataset from-bag` at {record['rate_hz']:g} Hz, state {' '.join(STATE_FIELDS)}, "
             f"command {' '.join(COMMAND_FIELDS)}; wall seconds, best of {record['repeats']}.", "",
             "| format | best (s) | all runs (s) | episodes | steps |", "|---|---|---|---|---|"]
    lines += [f"| {r['format']} | {r['best_s']:.2f} | {', '.join(f'{s:.2f}' for s in r['all_s'])} | "
              f"{r['episodes']} | {r['steps']} |" for r in record["rows"]]
    lines += ["", *targets_table(targets), "", f"- command: `{record['command']}`; git commit "
              f"{record['git_commit'][:12]}", f"- machine: {machine_line(record['machine'])}"]
    return "\n".join(lines) + "\n"


def check(args) -> None:
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")


def main(argv=None) -> int:
    return run_cli(build_parser(), argv, __file__, run, check)


if __name__ == "__main__":
    sys.exit(main())
