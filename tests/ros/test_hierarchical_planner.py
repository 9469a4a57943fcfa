"""Over real rclpy: `bringup maze2d_medium` with the shipped hierarchical checkpoint reaches a goal
across the maze within D4RL's episode length, and publishes its subgoals beside the dense plan."""
import time

import pytest
from action_msgs.msg import GoalStatus
from visualization_msgs.msg import MarkerArray

from .closed_loop_client import running_scenario

START, GOAL = (1.0, 1.0), (6.0, 6.0)  # opposite corners of the Medium maze
MEDIUM_EPISODE_STEPS = 600


@pytest.fixture(scope="module")
def medium(fresh_ros_domain):
    with running_scenario("maze2d_medium", START, "checkpoint:=checkpoints/maze2d_medium_hl.safetensors") as running:
        yield running


def test_hierarchical_checkpoint_reaches_the_far_corner_and_shows_its_subgoals(medium):
    client, bringup = medium
    markers = []
    client.node.create_subscription(MarkerArray, "plan_markers", markers.append, 10)
    started = client.sim_time()
    handle = client.send(GOAL, timeout=40.0)
    response = client.wait(handle.get_result_async(), 60)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    deadline = time.monotonic() + 2.0
    while client.sim_steps_until_within(started, GOAL, 0.5) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    steps = client.sim_steps_until_within(started, GOAL, 0.5)
    assert steps is not None and steps <= MEDIUM_EPISODE_STEPS, f"reached the goal after {steps} steps"
    assert client.paths and len(client.paths[-1].poses) > 100  # the dense plan, not the subgoals
    subgoals = [m for array in markers for m in array.markers if m.ns == "plan_subgoals"]
    assert subgoals and len(subgoals[-1].points) >= 4
    assert not bringup.failed()
