"""diffuser_planner as a managed (lifecycle) node, stepped through the standard lifecycle services over
the real rclpy: no goals and no non-zero command unless active, deactivate stops the robot, a failed
configure leaves the node unconfigured and alive, and a running goal's feedback says why it is stuck."""
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from diffuser_ros.send_goal import make_goal

from .planner_harness import Harness, stream_state, streaming_state

STUCK = ("state rejected", "no valid state")


class Lifecycle:
    """Clients of the planner's `change_state` and `get_state` services."""

    def __init__(self, harness):
        self.harness = harness
        self.change = harness.node.create_client(ChangeState, "diffuser_planner/change_state")
        self.get = harness.node.create_client(GetState, "diffuser_planner/get_state")
        assert self.change.wait_for_service(timeout_sec=10) and self.get.wait_for_service(timeout_sec=10)

    def state(self) -> str:
        return self.harness.wait(self.get.call_async(GetState.Request())).current_state.label

    def step(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.harness.wait(self.change.call_async(request), 60).success


@pytest.fixture
def managed(ros_context, tiny_checkpoint):
    harness = Harness(ros_context, tiny_checkpoint, autostart=False)
    yield harness, Lifecycle(harness)
    harness.close()


def nonzero_commands(harness, since=0):
    return [c for c in harness.commands[since:] if (c.accel.linear.x, c.accel.linear.y) != (0.0, 0.0)]


def test_transitions_through_the_standard_services(managed):
    harness, lifecycle = managed
    assert lifecycle.state() == "unconfigured"
    assert not harness.send((1.0, 1.0)).accepted
    assert lifecycle.step(Transition.TRANSITION_CONFIGURE) and lifecycle.state() == "inactive"
    assert harness.planner.planner is not None  # the model is loaded at configure
    stream_state(harness, (3.0, 3.0), 0.3)
    assert not harness.send((1.0, 1.0)).accepted
    assert lifecycle.step(Transition.TRANSITION_ACTIVATE) and lifecycle.state() == "active"
    handle = harness.send((1.0, 1.0))
    assert handle.accepted
    harness.wait(handle.cancel_goal_async())
    assert lifecycle.step(Transition.TRANSITION_DEACTIVATE) and lifecycle.state() == "inactive"
    assert lifecycle.step(Transition.TRANSITION_CLEANUP) and lifecycle.state() == "unconfigured"
    assert harness.planner.planner is None  # cleanup frees the model
    assert lifecycle.step(Transition.TRANSITION_CONFIGURE) and lifecycle.step(Transition.TRANSITION_ACTIVATE)
    stream_state(harness, (3.0, 3.0), 0.3)
    assert lifecycle.step(Transition.TRANSITION_ACTIVE_SHUTDOWN) and lifecycle.state() == "finalized"
    stream_state(harness, (3.0, 3.0), 1.0, stop=lambda: harness.commands)
    last = harness.commands[-1].accel.linear  # shutting down from active sends a zero command
    assert (last.x, last.y) == (0.0, 0.0)


def test_unconfigured_and_inactive_nodes_send_no_nonzero_command(managed):
    harness, lifecycle = managed
    stream_state(harness, (3.0, 3.0), 0.5)
    assert not harness.commands  # unconfigured: no command publisher at all
    assert lifecycle.step(Transition.TRANSITION_CONFIGURE)
    stream_state(harness, (3.0, 3.0), 0.5)
    assert not nonzero_commands(harness)


def test_deactivate_during_a_goal_aborts_it_and_stops_the_robot(managed):
    harness, lifecycle = managed
    assert lifecycle.step(Transition.TRANSITION_CONFIGURE) and lifecycle.step(Transition.TRANSITION_ACTIVATE)
    handle = harness.send((1.0, 1.0))
    with streaming_state(harness, (3.0, 3.0), 20.0):
        deadline = time.monotonic() + 10
        while not nonzero_commands(harness) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert nonzero_commands(harness), "the active planner never drove the robot"
        assert lifecycle.step(Transition.TRANSITION_DEACTIVATE)
        response = harness.wait(handle.get_result_async())
        assert response.status == GoalStatus.STATUS_ABORTED and "deactivated" in response.result.message
        after = len(harness.commands)
        last = harness.commands[-1].accel.linear
        assert (last.x, last.y) == (0.0, 0.0)
        time.sleep(0.5)
        assert not nonzero_commands(harness, since=after)


def test_failed_configure_leaves_the_node_unconfigured_and_alive(managed):
    harness, lifecycle = managed
    refused = harness.planner.set_parameters([Parameter("sampler", value="euler")])[0]
    assert not refused.successful and "sampler='euler'" in refused.reason  # refused when set
    checkpoint = harness.planner.get_parameter("checkpoint").value
    harness.planner.set_parameters([Parameter("checkpoint", value=checkpoint + ".missing")])
    assert not lifecycle.step(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == "unconfigured"
    assert "not found" in harness.planner.failure
    harness.planner.set_parameters([Parameter("checkpoint", value=checkpoint)])
    assert lifecycle.step(Transition.TRANSITION_CONFIGURE) and lifecycle.state() == "inactive"


def test_a_destroyed_planner_leaves_the_graph_with_its_action_server(ros_context, tiny_checkpoint):
    """A planner destroyed inside a running process (a test, a composed process) leaves the graph
    at once: no node of that name and no reach_goal server left for a client to wait on."""
    harness = Harness(ros_context, tiny_checkpoint)
    try:
        harness.executor.remove_node(harness.planner)
        harness.planner.destroy_node()

        def remains():
            return "diffuser_planner" in harness.node.get_node_names(), harness.client.server_is_ready()

        deadline = time.monotonic() + 10
        while any(remains()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remains() == (False, False)
    finally:
        harness.executor.shutdown()
        harness.client.destroy()
        harness.node.destroy_node()
        harness.thread.join(timeout=5)


def test_feedback_says_why_a_goal_is_stuck_on_bad_state_and_recovers(ros_context, tiny_checkpoint):
    harness = Harness(ros_context, tiny_checkpoint, stale_state_grace=5.0)
    statuses = []
    try:
        handle = harness.wait(harness.client.send_goal_async(
            make_goal(1.0, 1.0, "map", 0.5, 0.0), feedback_callback=lambda m: statuses.append(m.feedback.status)))
        stream_state(harness, (3.0, 3.0), 5.0, stop=lambda: "tracking the plan" in statuses)
        stream_state(harness, (math.nan, 3.0), 5.0, stop=lambda: any(s.startswith(STUCK[0]) for s in statuses))
        rejected = [s for s in statuses if s.startswith(STUCK[0])]
        assert rejected and "non-finite" in rejected[0], statuses
        stream_state(harness, (3.0, 3.0), 5.0, stop=lambda: not statuses[-1].startswith(STUCK))
        assert not statuses[-1].startswith(STUCK), statuses[-5:]
        assert np.all(np.isfinite([c.accel.linear.x for c in harness.commands]))
        harness.wait(handle.cancel_goal_async())
    finally:
        harness.close()


def test_bringup_no_autostart_leaves_the_planner_for_change_state(fresh_ros_domain, ros_context):
    """`bringup --no-autostart` starts the planner unconfigured; the standard services bring it up.
    (pytest builds the module-scoped fresh_ros_domain first: the context joins the new domain.)"""
    process = subprocess.Popen([sys.executable, "-m", "diffuser_ros.bringup", "maze2d_umaze", "--only",
                                "diffuser_planner", "--no-autostart"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = rclpy.create_node("lifecycle_client", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        get = node.create_client(GetState, "diffuser_planner/get_state")
        change = node.create_client(ChangeState, "diffuser_planner/change_state")
        assert get.wait_for_service(timeout_sec=60) and change.wait_for_service(timeout_sec=10)

        def call(client, request):
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=60)
            return future.result()

        assert call(get, GetState.Request()).current_state.label == "unconfigured"
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert call(change, ChangeState.Request(transition=Transition(id=transition))).success
        assert call(get, GetState.Request()).current_state.label == "active"
    finally:
        executor.shutdown()
        node.destroy_node()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
