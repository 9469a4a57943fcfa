"""Send a ReachGoal to the planner from the command line, print feedback, exit non-zero on failure.

    send_goal 1.0 1.0                 # drive the point robot to (1, 1) in frame 'map'
    send_goal 3 1 --tolerance 0.3 --timeout 20
"""
from __future__ import annotations

import argparse
import sys
import time

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient

from diffuser_ros.action import ReachGoal

STATUS_NAMES = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_ABORTED: "aborted",
                GoalStatus.STATUS_CANCELED: "canceled"}


def make_goal(x: float, y: float, frame: str, tolerance: float, timeout: float) -> ReachGoal.Goal:
    goal = ReachGoal.Goal(tolerance=tolerance, timeout=timeout)
    goal.goal.header.frame_id = frame
    goal.goal.pose.position.x, goal.goal.pose.position.y = x, y
    goal.goal.pose.orientation.w = 1.0
    return goal


def wait_for(node, future, timeout_s: float | None, check=None) -> bool:
    """Spin `node` until `future` completes or `timeout_s` passes; `check()`, if given, runs every
    cycle and may raise RuntimeError to stop waiting (e.g. the planner's process has exited)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not future.done():
        if deadline is not None and time.monotonic() > deadline:
            return False
        if check is not None:
            check()
        rclpy.spin_once(node, timeout_sec=0.05)
    return True


def wait_for_server(client, timeout_s: float, check=None) -> bool:
    """Wait for the client's action server, running `check()` (see `wait_for`) every half second."""
    deadline = time.monotonic() + timeout_s
    while not client.wait_for_server(timeout_sec=min(0.5, max(0.0, deadline - time.monotonic()))):
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            return False
    return True


def request_goal(node, client, goal, on_feedback, timeout_s: float, check=None, answer_timeout_s: float = 5.0):
    """Send the goal request until the server answers; returns the goal handle. A request sent while a
    just-started server has not yet discovered this client's reply channel is lost without an error
    (seen with a planner still loading its model), so an unanswered request is sent again; should
    the lost one have reached the server after all, the newer goal preempts it."""
    deadline = time.monotonic() + timeout_s
    while True:
        future = client.send_goal_async(goal, feedback_callback=on_feedback)
        if wait_for(node, future, min(answer_timeout_s, max(0.0, deadline - time.monotonic())), check):
            return future.result()
        if time.monotonic() >= deadline:
            raise RuntimeError("the action server did not answer the goal request")


def send_goal(node, goal, action_name: str = "reach_goal", server_timeout_s: float = 30.0,
              on_feedback=None, result_timeout_s: float | None = None, on_accepted=None, action_type=ReachGoal,
              check=None):
    """Send one goal (of `action_type`, ReachGoal by default) and wait; returns (status, result) or
    raises RuntimeError with the reason. `on_accepted()` runs once the planner has accepted the goal;
    `check()` runs while waiting (see `wait_for`)."""
    client = ActionClient(node, action_type, action_name)
    if not wait_for_server(client, server_timeout_s, check):
        raise RuntimeError(f"no '{action_name}' action server after {server_timeout_s:.0f} s (is the planner running?)")
    handle = request_goal(node, client, goal, on_feedback, server_timeout_s, check)
    if not handle.accepted:
        raise RuntimeError("goal rejected by the planner (see its log for the reason)")
    if on_accepted is not None:
        on_accepted()
    result = handle.get_result_async()
    if not wait_for(node, result, result_timeout_s, check):
        handle.cancel_goal_async()
        raise RuntimeError(f"no result after {result_timeout_s:.0f} s; cancel sent")
    return result.result().status, result.result().result


def run_from_command_line(program: str, goal, action_name: str, on_feedback, ros_args: list[str],
                          describe_result, action_type=ReachGoal) -> int:
    """rclpy up, one goal sent and waited for, rclpy down; print the outcome, with
    `describe_result(result)` for the action's own result fields. The exit code: 0 on success, 1 on
    failure or when no result came (the reason printed), 130 on Ctrl-C."""
    rclpy.init(args=[program, *ros_args])
    node = rclpy.create_node(program)
    try:
        status, result = send_goal(node, goal, action_name, on_feedback=on_feedback, action_type=action_type)
    except RuntimeError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"{program}: {STATUS_NAMES.get(status, status)}: success={result.success} "
          f"{describe_result(result)} — {result.message}")
    return 0 if result.success else 1


def print_feedback(message) -> None:
    feedback = message.feedback
    print(f"  distance {feedback.distance_remaining:6.3f} m   replans {feedback.replans:4d}   "
          f"plan {feedback.plan_time_ms:7.1f} ms", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="send_goal", description=__doc__.splitlines()[0])
    parser.add_argument("x", type=float)
    parser.add_argument("y", type=float)
    parser.add_argument("--frame", default="map")
    parser.add_argument("--tolerance", type=float, default=0.0, help="success radius (0: the node's default)")
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds before the planner aborts (0: none)")
    parser.add_argument("--action", default="reach_goal", help="action name (relative, remappable)")
    parser.add_argument("--quiet", action="store_true", help="do not print feedback")
    args, ros_args = parser.parse_known_args(argv)
    return run_from_command_line("send_goal", make_goal(args.x, args.y, args.frame, args.tolerance, args.timeout),
                                 args.action, None if args.quiet else print_feedback, ros_args,
                                 lambda result: f"final_distance={result.final_distance:.3f} replans={result.replans}")


if __name__ == "__main__":
    sys.exit(main())
