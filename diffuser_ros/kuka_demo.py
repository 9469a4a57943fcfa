"""The Kuka demo: the simulated KUKA iiwa with four blocks + the arm planner (shipped checkpoint), one goal.

Starts the `kuka_stack` scenario's nodes as processes (like `bringup`), sends a StackBlocks goal (any
tower by default), prints the planner's feedback after every stage, and saves a picture of the final
scene, drawn from the `joint_states` and `blocks` the simulator published.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from diffuser_ros.action import StackBlocks
from diffuser_ros.bringup import Bringup
from diffuser_ros.conversions import block_poses, joint_positions
from diffuser_ros.demo_support import demo_node, spinning_in_background, wait_until
from diffuser_ros.msg import Blocks
from diffuser_ros.send_goal import STATUS_NAMES, send_goal
from diffuser_ros.send_stack_goal import make_goal, parse_relation, print_feedback


class SceneRecorder:
    """Keeps the newest arm joint angles and block poses."""

    def __init__(self, node, joint_names):
        self.joint_names, self.joints, self.blocks = joint_names, None, None
        node.create_subscription(JointState, "joint_states", self.on_joint_states, qos_profile_sensor_data)
        node.create_subscription(Blocks, "blocks", self.on_blocks, qos_profile_sensor_data)

    def on_joint_states(self, message: JointState) -> None:
        try:
            self.joints = joint_positions(message, self.joint_names)
        except ValueError:
            pass

    def on_blocks(self, message: Blocks) -> None:
        self.blocks = block_poses(message)


def save_picture(joints: np.ndarray, blocks: dict, title: str, path: Path) -> None:
    """The scene as the simulator last published it, drawn by pybullet's CPU renderer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffuser_core.tasks.kuka.world import KukaBlockWorld

    with KukaBlockWorld() as world:
        world.show(joints, blocks)
        image = world.render()
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    axes.imshow(image)
    axes.set_axis_off()
    axes.set_title(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="diffuser_ros.kuka_demo", description=__doc__.splitlines()[0])
    parser.add_argument("relations", nargs="*", type=parse_relation, metavar="TOP:BOTTOM",
                        help="on-top relations (none: any four-block tower)")
    parser.add_argument("--rearrange", action="store_true", help="task 'rearrange' instead of 'stack'")
    parser.add_argument("--scenario", default="kuka_stack")
    parser.add_argument("--seed", type=int, default=0, help="kuka_sim's block start positions")
    parser.add_argument("--checkpoint", help="the planner's checkpoint (default: the scenario's)")
    parser.add_argument("--max-stages", type=int, help="plans per goal (default: the scenario's)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before the goal is aborted")
    parser.add_argument("--picture", default="results/demo_kuka_stack.png")
    parser.add_argument("--verbose", action="store_true", help="show the nodes' own log output")
    args = parser.parse_args(argv)
    if args.rearrange and not args.relations:
        parser.error("--rearrange needs at least one TOP:BOTTOM relation")
    return args


def node_overrides(args) -> list[str]:
    """Per-node ROS parameter overrides for the scenario's processes."""
    overrides = ["-p", f"kuka_sim:seed:={args.seed}"]
    if args.checkpoint:
        overrides += ["-p", f"diffuser_planner:checkpoint:={args.checkpoint}"]
    if args.max_stages:
        overrides += ["-p", f"diffuser_planner:max_stages:={args.max_stages}"]
    return overrides


def main(argv: list[str] | None = None) -> int:
    from diffuser_core.tasks.kuka.urdf import arm_joint_limits

    args = parse_args(argv)
    bringup = Bringup(args.scenario, ros_args=node_overrides(args), quiet=not args.verbose)
    print(f"demo: starting {', '.join(s.name for s in bringup.nodes)} ({bringup.config.name})")
    try:
        with demo_node("kuka_demo") as (node, executor), bringup:
            recorder = SceneRecorder(node, arm_joint_limits()[0])
            wait_until(executor, lambda: recorder.joints is not None and recorder.blocks is not None,
                       "joint_states and blocks from the simulator", bringup.check_running)
            status, result = run_goal(executor, args, bringup)
            settle_until = time.monotonic() + 1.0  # the scene after the last stage
            while time.monotonic() < settle_until:
                executor.spin_once(timeout_sec=0.05)
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    outcome = f"{STATUS_NAMES.get(status, status)}: score {result.score:.0f} after {result.replans} stages"
    if recorder.joints is not None and recorder.blocks is not None:
        save_picture(recorder.joints, recorder.blocks, f"Diffuser, Kuka block stacking — {outcome}", Path(args.picture))
        saved = f"; picture saved to {args.picture}"
    else:
        saved = "; no joint_states/blocks received, no picture"
    print(f"demo: {'SUCCESS' if result.success else 'FAILED'} — {result.message}{saved}")
    return 0 if result.success else 1


def run_goal(executor, args, bringup):
    """Send the goal while a background thread spins the scene recorder; fail fast if a node dies."""
    goal_node = rclpy.create_node("kuka_demo_client")
    try:
        with spinning_in_background(executor):
            wanted = ", ".join(f"{top} on {bottom}" for top, bottom in args.relations) or "any four-block tower"
            print(f"demo: goal {wanted}")
            return send_goal(goal_node, make_goal(args.relations, args.rearrange, args.timeout), "stack_blocks",
                             server_timeout_s=120.0, on_feedback=print_feedback, result_timeout_s=args.timeout + 10.0,
                             action_type=StackBlocks, check=bringup.check_running)
    finally:
        goal_node.destroy_node()


if __name__ == "__main__":
    sys.exit(main())
