"""The reference code's plan-tracking rule for the point mass."""
import numpy as np
import pytest

from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.point_mass import next_waypoint, waypoint_tracking_action


def test_rule_uses_next_state_and_holds_last_waypoint_at_rest():
    plan = np.array([[0, 0, 0, 0], [0.1, 0.0, 0.5, 0.0], [0.2, 0.1, 0.5, 0.5]])
    np.testing.assert_allclose(next_waypoint(plan, 0), plan[1])
    np.testing.assert_allclose(next_waypoint(plan, 7), [0.2, 0.1, 0.0, 0.0])
    state = np.array([0.05, 0.0, 0.2, 0.1])
    # (0.1 - 0.05) + (0.5 - 0.2) = 0.35 ; (0 - 0) + (0 - 0.1) = -0.1
    np.testing.assert_allclose(waypoint_tracking_action(state, plan, 0), [0.35, -0.1])
    far = np.array([5.0, -5.0, 0.0, 0.0])
    np.testing.assert_allclose(waypoint_tracking_action(far, plan, 1), [-1.0, 1.0])  # clipped


@pytest.mark.parametrize("state, plan, t, message", [
    ([0, 0, 0], np.zeros((3, 4)), 0, "state"),
    ([0, 0, 0, np.nan], np.zeros((3, 4)), 0, "state"),
    ([0, 0, 0, 0], np.zeros((3, 2)), 0, "plan"),
    ([0, 0, 0, 0], np.full((3, 4), np.inf), 0, "non-finite"),
    ([0, 0, 0, 0], np.zeros((3, 4)), -1, "t must"),
    ([0, 0, 0, 0], np.zeros((3, 4)), 1.5, "t must"),
])
def test_bad_inputs_are_rejected(state, plan, t, message):
    with pytest.raises(ValueError, match=message):
        waypoint_tracking_action(state, plan, t)


def test_tracking_a_straight_line_plan_moves_the_mass_along_it():
    env = Maze2DEnv("umaze", seed=0)
    env.reset(start_cell=(3, 1))
    env.set_state((3.0, 1.0), (0.0, 0.0))
    steps = 80
    ys = np.linspace(1.0, 3.0, steps + 1)  # along the bottom corridor at 2.5 cells/s
    plan = np.stack([np.full_like(ys, 3.0), ys, np.zeros_like(ys), np.full_like(ys, 2.5)], axis=1)
    plan[-1, 3] = 0.0
    observation, lateral = env.observation(), []
    for t in range(steps + 60):
        observation, *_ = env.step(waypoint_tracking_action(observation, plan, t))
        if t < steps:
            lateral.append(abs(observation[0] - 3.0))
            assert abs(observation[1] - ys[t + 1]) < 0.25, f"fell behind the plan at step {t}"
    assert max(lateral) < 0.05
    np.testing.assert_allclose(observation[:2], [3.0, 3.0], atol=0.05)  # holds the last waypoint
    assert np.linalg.norm(observation[2:]) < 0.2


def test_progress_index_skips_past_steps_but_not_unreached_ones():
    from diffuser_core.planning.horizon import progress_index

    plan = np.zeros((10, 4))
    plan[:, 0] = np.arange(10) * 0.1  # a straight line along x
    # The robot followed the plan: the elapsed time's step is the nearest one.
    assert progress_index(np.array([0.5, 0, 0, 0]), plan, elapsed_steps=5, position_dims=(0, 1)) == 5
    # The robot waited at the start while the plan was computed: stay at its start.
    assert progress_index(np.array([0.0, 0, 0, 0]), plan, elapsed_steps=8, position_dims=(0, 1)) == 0
    # Never ahead of the elapsed time, and clipped to the plan's end.
    assert progress_index(np.array([0.9, 0, 0, 0]), plan, elapsed_steps=3, position_dims=(0, 1)) == 3
    assert progress_index(np.array([0.9, 0, 0, 0]), plan, elapsed_steps=50, position_dims=(0, 1)) == 9


def test_the_point_mass_reads_a_costmap_beyond_its_walls_or_as_a_whole():
    from diffuser_core.planar.avoidance import AvoidanceSettings
    from diffuser_core.tasks.maze2d.grid import MazeGrid
    from diffuser_core.tasks.maze2d.point_mass import PointMass

    costmap = MazeGrid.of_maze("umaze").occupancy_map()
    mass = PointMass("umaze")
    beyond = mass.surroundings(costmap, AvoidanceSettings())
    assert beyond.obstacle_cells == 0 and beyond.shield is None  # the walls the model knows are no obstacles
    goal, start = np.array([1.0, 1.0, 0.0, 0.0]), np.array([3.0, 1.0, 0.0, 0.0])
    assert beyond.aim(start, goal) is None and beyond.planning_arguments(goal, None) == {}
    whole = mass.surroundings(costmap, AvoidanceSettings(whole_map=True, route_reach=2.0, route_horizon=40,
                                                         route_steps_per_m=30.0))
    assert whole.obstacle_cells == costmap.occupied.sum() and whole.shield is None  # it brakes before added cells only
    waypoint, dims, horizon = whole.aim(start, goal)
    assert dims == (0, 1) and horizon == 40 + 60  # 2 m of route
    assert MazeGrid.of_maze("umaze").is_free(waypoint[:2]) and np.linalg.norm(waypoint[:2] - start[:2]) > 1.0
    near = np.array([1.0, 2.2, 0.0, 0.0])  # 1.2 m of route from the goal: the goal itself, sized by that route
    target, dims, horizon = whole.aim(near, goal)
    assert dims is None and np.array_equal(target, goal) and 40 + 30 * 1.0 < horizon < 40 + 30 * 1.6


def test_the_route_planner_times_the_free_route_and_the_mass_tracks_it_to_the_goal():
    from diffuser_core.planar.route_planner import timed_path
    from diffuser_core.planning.receding import LoopSettings
    from diffuser_core.tasks.maze2d.baselines import expert_episode, route_planner
    from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, evaluate_episode

    positions, velocities = timed_path(np.array([[0.0, 0.0], [3.0, 0.0]]), speed=2.0, acceleration=4.0, dt=0.01)
    speeds = np.linalg.norm(velocities, axis=1)
    assert np.allclose(positions[-1], (3.0, 0.0)) and speeds.max() <= 2.0 + 1e-6 and speeds[-1] == 0.0
    assert 2.0 <= len(positions) * 0.01 <= 2.1  # 2 m at 2 m/s (1 s) and two 0.5 s ramps of 0.5 m each
    planner = route_planner("umaze", speed=3.0, acceleration=3.0)
    plan = planner.plan(np.array([3.0, 1.0, 0.0, 0.0]), goal=np.array([1.0, 1.0, 0.0, 0.0]))
    from diffuser_core.tasks.maze2d.grid import MazeGrid
    assert all(MazeGrid.of_maze("umaze").is_free(xy) for xy in plan.observations[::10, :2])  # around the inner wall
    env, config = Maze2DEnv("umaze"), Maze2DEvalConfig(maze="umaze", loop=LoopSettings(shrink_horizon=False))
    episode = evaluate_episode(env, planner, config, seed=0, start_cell=(3, 1))
    assert episode.reached and episode.wall_contact_steps == 0
    assert expert_episode(env, seed=0, start_cell=(3, 1)).reached  # D4RL's own controller
