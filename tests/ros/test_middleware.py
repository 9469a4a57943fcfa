"""Foundation over the real middleware: a Plan crosses a topic; ReachGoal goes goal → feedback → result
and can be canceled, between a server and a client node in one process."""
import threading
import time

import numpy as np
import rclpy
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import SingleThreadedExecutor

from diffuser_ros.action import ReachGoal
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.msg import Plan

from .conftest import spin_until


def test_plan_message_is_published_and_received(ros_context):
    publisher_node = rclpy.create_node("plan_publisher", context=ros_context)
    subscriber_node = rclpy.create_node("plan_subscriber", context=ros_context)
    received = []
    subscriber_node.create_subscription(Plan, "diffuser_plan", received.append, 10)
    publisher = publisher_node.create_publisher(Plan, "diffuser_plan", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(publisher_node)
    executor.add_node(subscriber_node)
    plan = np.linspace(0.0, 1.0, 8 * 4, dtype=np.float32).reshape(8, 4)
    message = Plan(horizon=8, dim=4, data=plan.ravel().tolist(), denoising_steps=20, plan_time_ms=3.5)
    message.header.frame_id = "map"

    def publish_until_received():
        publisher.publish(message)
        return bool(received)

    assert spin_until(executor, publish_until_received, timeout_s=10.0), "no Plan received"
    got = received[0]
    assert (got.horizon, got.dim, got.denoising_steps, got.header.frame_id) == (8, 4, 20, "map")
    assert np.array_equal(np.asarray(got.data, dtype=np.float32).reshape(8, 4), plan)
    executor.shutdown()


class CountdownServer:
    """A ReachGoal server that 'drives' the distance down by 1 per 20 ms and honours cancel."""

    def __init__(self, node):
        self.server = ActionServer(
            node, ReachGoal, "reach_goal", execute_callback=self.execute,
            goal_callback=self.on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())

    @staticmethod
    def on_goal(goal):
        if not np.isfinite(goal.goal.pose.position.x):
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def execute(self, handle):
        distance = float(handle.request.goal.pose.position.x)
        replans = 0
        while distance > 0:
            if handle.is_cancel_requested:
                handle.canceled()
                return ReachGoal.Result(success=False, final_distance=distance, replans=replans, message="canceled")
            replans += 1
            distance -= 1.0
            handle.publish_feedback(ReachGoal.Feedback(distance_remaining=distance, replans=replans, plan_time_ms=1.0))
            time.sleep(0.02)
        handle.succeed()
        return ReachGoal.Result(success=True, final_distance=0.0, replans=replans, message="reached")


def make_action_pair(ros_context):
    server_node = rclpy.create_node("reach_goal_server", context=ros_context)
    client_node = rclpy.create_node("reach_goal_client", context=ros_context)
    server = CountdownServer(server_node)
    client = ActionClient(client_node, ReachGoal, "reach_goal")
    executor = PooledExecutor(num_threads=4, context=ros_context)
    executor.add_node(server_node)
    executor.add_node(client_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    assert client.wait_for_server(timeout_sec=10.0), "action server not discovered"
    return server, client, executor, thread


def wait(future, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.done(), "timed out waiting for an action response"
    return future.result()


def reach_goal(distance):
    goal = ReachGoal.Goal(tolerance=0.1, timeout=5.0)
    goal.goal.header.frame_id = "map"
    goal.goal.pose.position.x = distance
    return goal


def test_reach_goal_round_trip_with_feedback(ros_context):
    _, client, executor, thread = make_action_pair(ros_context)
    feedback = []
    handle = wait(client.send_goal_async(reach_goal(5.0), feedback_callback=feedback.append))
    assert handle.accepted
    result = wait(handle.get_result_async()).result
    assert result.success and result.replans == 5 and result.message == "reached"
    assert [f.feedback.distance_remaining for f in feedback][-1] == 0.0
    assert len(feedback) >= 3
    executor.shutdown()
    thread.join(timeout=5)


def test_reach_goal_cancel_and_reject(ros_context):
    _, client, executor, thread = make_action_pair(ros_context)
    rejected = wait(client.send_goal_async(reach_goal(float("nan"))))
    assert not rejected.accepted
    handle = wait(client.send_goal_async(reach_goal(1000.0)))
    assert handle.accepted
    time.sleep(0.1)
    cancel = wait(handle.cancel_goal_async())
    assert len(cancel.goals_canceling) == 1
    response = wait(handle.get_result_async())
    assert response.status == 5  # action_msgs/GoalStatus.STATUS_CANCELED
    assert not response.result.success and response.result.message == "canceled"
    executor.shutdown()
    thread.join(timeout=5)
