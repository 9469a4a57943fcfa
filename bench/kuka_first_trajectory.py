"""Over rclpy, how soon a StackBlocks goal's first JointTrajectory reaches the arm: `bringup kuka_stack`
(kuka_sim and the arm planner as processes, the shipped checkpoint and settings), goals sent one after
another from a client process (each canceled once its first trajectory came), timed from acceptance.

  python bench/kuka_first_trajectory.py [--goals 5] [--out results/kuka_first_trajectory.json]

Writes OUT (JSON) and OUT with .md. The target: the first trajectory within 1 s of acceptance.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.action import ActionClient
from trajectory_msgs.msg import JointTrajectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance, provenance_lines, write_json  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_ros.action import StackBlocks  # noqa: E402
from diffuser_ros.bringup import Bringup  # noqa: E402
from diffuser_ros.executors import PooledExecutor  # noqa: E402
from diffuser_ros.msg import Relation  # noqa: E402

GOALS = (("rearrange", [("red", "green")]), ("rearrange", [("blue", "yellow")]), ("stack", []),
         ("rearrange", [("green", "blue")]), ("rearrange", [("yellow", "red")]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="kuka_stack")
    parser.add_argument("--goals", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "results" / "kuka_first_trajectory.json"))
    return parser


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.002)
    return predicate()


def measure(scenario: str, goals: int) -> list[dict]:
    """Per goal: seconds from acceptance to the first JointTrajectory, and the stage's plan ms (feedback)."""
    bringup = Bringup(scenario, quiet=True).start()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("first_trajectory_client", context=context)
    arrivals: list[float] = []

    def on_trajectory(message: JointTrajectory) -> None:
        if len(message.points) > 1:  # a stage's plan (a hold is one point)
            arrivals.append(time.monotonic())

    node.create_subscription(JointTrajectory, "joint_trajectory", on_trajectory, 10)
    client = ActionClient(node, StackBlocks, "stack_blocks")
    executor = PooledExecutor(num_threads=2, context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    rows = []
    try:
        if not client.wait_for_server(timeout_sec=120):
            raise RuntimeError(f"the arm planner never came up (bringup failed: {bringup.failed()})")
        time.sleep(3.0)  # the planner's first joint_states and blocks
        for index in range(goals):
            task, relations = GOALS[index % len(GOALS)]
            before, feedback = len(arrivals), []
            future = client.send_goal_async(StackBlocks.Goal(
                task=task, relations=[Relation(top=t, bottom=b) for t, b in relations]),
                feedback_callback=lambda message: feedback.append(message.feedback.plan_time_ms))
            wait_for(future.done, 30)
            accepted = time.monotonic()
            handle = future.result()
            came = wait_for(lambda: len(arrivals) > before, 60)
            wait_for(lambda: feedback, 5)
            rows.append({"goal": f"{task} {relations}", "first_trajectory_s": arrivals[before] - accepted if came else None,
                         "stage_plan_ms": feedback[0] if feedback else None})
            wait_for(handle.cancel_goal_async().done, 30)
            wait_for(handle.get_result_async().done, 30)
            time.sleep(1.0)  # the hold after the cancel settles
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        bringup.stop()
    return rows


def markdown(record: dict) -> str:
    times = [row["first_trajectory_s"] for row in record["rows"] if row["first_trajectory_s"] is not None]
    lines = ["# Kuka over ROS: first trajectory of a goal", "",
             "| goal | first JointTrajectory after acceptance (s) | stage plan (ms) |", "|---|---|---|"]
    lines += [f"| {row['goal']} | {row['first_trajectory_s']:.2f} | {row['stage_plan_ms'] or float('nan'):.0f} |"
              if row["first_trajectory_s"] is not None else f"| {row['goal']} | none in 60 s | – |"
              for row in record["rows"]]
    lines += ["", f"- median {np.median(times):.2f} s, largest {max(times):.2f} s over {len(times)} goals "
              "(target: within 1 s of acceptance)" if times else "- no trajectory came",
              f"- `bringup {record['scenario']}` (kuka_sim and the arm planner as processes, the shipped settings); "
              "goals one after another, each canceled once its first trajectory came",
              *provenance_lines(record)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    origin = provenance([resolve_data_path(planner_parameters(args.scenario)["checkpoint"])])
    rows = measure(args.scenario, args.goals)
    record = {"benchmark": "kuka_first_trajectory", "scenario": args.scenario, "seed": 0, "rows": rows,
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **origin}
    out = write_json(args.out, record)
    out.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
