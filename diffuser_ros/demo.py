"""The closed-loop demo: a scenario's simulator + Diffuser planner, one goal (default: Maze2D U-Maze).

Starts the scenario's nodes as processes (like `bringup`), sends a ReachGoal, prints feedback while
the planner replans, and saves a plot of the driven path and the last plan. Any planar scenario
works (`--scenario diffdrive_room`, or a scenario file); `--scenario kuka_stack` runs the Kuka
block-stacking demo instead (diffuser_ros/kuka_demo.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import rclpy
from nav_msgs.msg import Odometry, Path as PathMsg
from rclpy.qos import qos_profile_sensor_data

from diffuser_core.scenario import load_scenario, resolve_config
from diffuser_ros.bringup import Bringup
from diffuser_ros.conversions import odometry_to_state
from diffuser_ros.demo_support import demo_node, spinning_in_background, wait_until
from diffuser_ros.send_goal import make_goal, print_feedback, send_goal

class PathRecorder:
    """Keeps the robot's driven positions (with their simulated stamps) and the newest planned path."""

    def __init__(self, node):
        self.driven: list[np.ndarray] = []
        self.stamps: list[float] = []
        self.plan = np.zeros((0, 2))
        self.recording = False  # set when the goal is sent: one odom message per simulation step
        self.has_state = False  # the simulator's first odometry arrived
        node.create_subscription(Odometry, "odom", self.on_odometry, qos_profile_sensor_data)
        node.create_subscription(PathMsg, "plan", self.on_plan, 1)

    def on_odometry(self, message: Odometry) -> None:
        self.has_state = True
        if self.recording:
            self.driven.append(odometry_to_state(message)[:2])
            self.stamps.append(message.header.stamp.sec + message.header.stamp.nanosec * 1e-9)

    def on_plan(self, message: PathMsg) -> None:
        self.plan = np.array([[p.pose.position.x, p.pose.position.y] for p in message.poses])


def save_plot(maze: str, driven: np.ndarray, plan: np.ndarray, goal: np.ndarray, path: Path) -> None:
    """Walls, the driven path and the last plan, top-down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from diffuser_core.tasks.diffdrive.layouts import layout_grid

    figure, axes = plt.subplots(figsize=(5, 5))
    for center, half in layout_grid(maze).wall_boxes():
        axes.add_patch(Rectangle(center - half, *(2 * half), color="0.35"))
    if len(plan):
        axes.plot(plan[:, 0], plan[:, 1], "-", color="tab:blue", alpha=0.6, label="last plan")
    if len(driven):
        axes.plot(driven[:, 0], driven[:, 1], "-", color="tab:orange", lw=2, label="driven")
        axes.plot(*driven[0], "o", color="tab:green", label="start")
    axes.plot(*goal, "*", color="tab:red", ms=15, label="goal")
    axes.set_aspect("equal")
    axes.autoscale()
    axes.legend(loc="best", fontsize=8)
    axes.set_title(f"Diffuser closed loop, {maze}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def scenario_of(argv: list[str]) -> str:
    """The --scenario in argv, or the maze demo's default."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--scenario", default="maze2d_umaze")
    return parser.parse_known_args(argv)[0].scenario


def scenario_robot(scenario: str) -> tuple[str, str]:
    """(the scenario's simulator node, the layout its planner knows)."""
    nodes = {spec.name: spec.parameters for spec in load_scenario(resolve_config(scenario))}
    simulators = [name for name in nodes if name != "diffuser_planner"]
    if not simulators or "diffuser_planner" not in nodes:
        raise SystemExit(f"demo: scenario {scenario} needs a simulator and a diffuser_planner")
    return simulators[0], nodes["diffuser_planner"].get("maze") or "umaze"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if scenario_of(argv).startswith("kuka"):
        from diffuser_ros import kuka_demo  # the arm scenario has its own demo (goal, feedback, picture)

        return kuka_demo.main(argv)
    parser = argparse.ArgumentParser(prog="diffuser_ros.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="maze2d_umaze")
    parser.add_argument("--maze", help="layout drawn in the plot (default: the planner's `maze`)")
    parser.add_argument("--start", nargs="+", type=float, default=[3.0, 3.0], metavar="X Y [YAW]",
                        help="start position (and heading, for a simulator that takes one)")
    parser.add_argument("--goal", nargs=2, type=float, default=[1.0, 1.0], metavar=("X", "Y"))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before the goal is aborted")
    parser.add_argument("--plot", default=None, help="picture of the run (default results/demo_<scenario>.png)")
    parser.add_argument("--verbose", action="store_true", help="show the nodes' own log output")
    args = parser.parse_args(argv)
    args.plot = args.plot or f"results/demo_{Path(args.scenario).stem}.png"

    simulator, layout = scenario_robot(args.scenario)
    args.maze = args.maze or layout
    if len(args.start) not in (2, 3):
        parser.error("--start takes X Y or X Y YAW")
    start = f"{simulator}:start:=[{','.join(str(value) for value in args.start)}]"
    bringup = Bringup(args.scenario, ros_args=["-p", start], quiet=not args.verbose)
    print(f"demo: starting {', '.join(s.name for s in bringup.nodes)} ({bringup.config.name})")
    try:
        with demo_node("diffuser_demo") as (node, executor), bringup:
            recorder = PathRecorder(node)
            wait_until(executor, lambda: recorder.has_state, "odom from the simulator", bringup.check_running)
            status, result = run_goal(node, executor, args, bringup, recorder)
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    driven = np.array(recorder.driven) if recorder.driven else np.zeros((0, 2))
    save_plot(args.maze, driven, recorder.plan, np.array(args.goal), Path(args.plot))
    near = np.flatnonzero(np.linalg.norm(driven - np.array(args.goal), axis=1) <= 0.5) if len(driven) else []
    # from the odometry stamps (simulated time), so messages this client missed do not shorten it
    seconds = recorder.stamps[near[0]] - recorder.stamps[0] if len(near) else 0.0
    steps = f"; in the goal region after {seconds / 0.01:.0f} simulation steps of 0.01 s" if len(near) else ""
    print(f"demo: {'SUCCESS' if result.success else 'FAILED'} — {result.message}; final distance "
          f"{result.final_distance:.3f} m after {result.replans} replans{steps}; plot saved to {args.plot}")
    return 0 if result.success else 1


def run_goal(node, executor, args, bringup, recorder):
    """Send the goal while a background thread spins the recorder; fail fast if a node dies."""
    goal_node = rclpy.create_node("diffuser_demo_client")
    try:
        with spinning_in_background(executor):
            print(f"demo: goal ({args.goal[0]}, {args.goal[1]}) from start ({args.start[0]}, {args.start[1]})")
            return send_goal(goal_node, make_goal(*args.goal, "map", 0.0, args.timeout), on_feedback=print_feedback,
                             result_timeout_s=args.timeout + 10.0,
                             on_accepted=lambda: setattr(recorder, "recording", True), check=bringup.check_running)
    finally:
        goal_node.destroy_node()


if __name__ == "__main__":
    sys.exit(main())
