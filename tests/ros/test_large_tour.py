"""Over real rclpy: one `bringup maze2d_large` with the shipped scenario (the hierarchical model
planning on the whole map the simulator publishes) tours the Large maze between far cells in both
directions, (1, 10) -> (7, 1) -> (1, 10) -> (7, 9) -> (1, 1), and reaches every goal within its
D4RL episode (800 steps, 8 s of simulated time). The tour runs on simulated time at half real time
(`--use-sim-time`), so a loaded machine's slower plans cost the robot fewer simulated steps."""
import time

from action_msgs.msg import GoalStatus

from .closed_loop_client import running_scenario

START = (1.0, 10.0)
TOUR = [(7.0, 1.0), (1.0, 10.0), (7.0, 9.0), (1.0, 1.0)]
EPISODE_STEPS = 800  # D4RL's maze2d-large-v1 episode
GOAL_TIMEOUT_S = 30.0  # simulated seconds the action allows; the bound below is the episode's


def test_a_tour_across_the_large_maze_reaches_every_goal_within_its_episode(fresh_ros_domain):
    with running_scenario("maze2d_large", START, use_sim_time=True,
                          sim_parameters=("real_time_factor:=0.5",)) as (client, bringup):
        legs = []
        for goal in TOUR:
            started = client.sim_time()
            handle = client.send(goal, timeout=GOAL_TIMEOUT_S)
            response = client.wait(handle.get_result_async(), 90)
            assert response.status == GoalStatus.STATUS_SUCCEEDED, f"{goal}: {response.result.message}"
            deadline = time.monotonic() + 2.0
            while client.sim_steps_until_within(started, goal, 0.5) is None and time.monotonic() < deadline:
                time.sleep(0.02)
            legs.append((goal, client.sim_steps_until_within(started, goal, 0.5)))
        print(f"steps per leg: {legs}")
        for goal, steps in legs:
            assert steps is not None and steps <= EPISODE_STEPS, f"{goal} reached after {steps} steps ({legs})"
        assert not bringup.failed()
