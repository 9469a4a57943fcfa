"""Two robots side by side: `bringup maze2d_umaze --namespace robot1` and `... robot2` run their own
simulator and planner, and each reaches its own goal without hearing the other."""
import numpy as np
from action_msgs.msg import GoalStatus

from .closed_loop_client import running_scenario


def test_two_namespaced_pairs_each_reach_their_own_goal(fresh_ros_domain):
    with running_scenario("maze2d_umaze", (3.0, 3.0), namespace="robot1", clock=False) as (first, first_bringup), \
            running_scenario("maze2d_umaze", (1.0, 1.0), namespace="robot2", clock=False) as (second, second_bringup):
        first_goal, second_goal = (1.0, 1.0), (3.0, 3.0)
        first_handle = first.send(first_goal, timeout=40.0)
        second_handle = second.send(second_goal, timeout=40.0)
        for client, handle, goal in ((first, first_handle, first_goal), (second, second_handle, second_goal)):
            response = client.wait(handle.get_result_async(), 60)
            assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
            assert np.linalg.norm(client.position() - np.array(goal)) < 0.6
        assert {m.header.frame_id for m in first.states} == {"map"}
        assert not first_bringup.failed() and not second_bringup.failed()
