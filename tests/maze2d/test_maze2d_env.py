"""Maze2DEnv: D4RL constants, geometry, dynamics, reward, determinism, input checks."""
import numpy as np
import pytest

from diffuser_core.tasks.maze2d import layouts as L
from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.data import WaypointExpert


@pytest.fixture(scope="module")
def umaze():
    return Maze2DEnv("umaze", seed=0)


@pytest.mark.parametrize("maze, goal, limit, low, high, shape", [
    ("umaze", (1, 1), 300, 23.85, 161.86, (5, 5)),
    ("medium", (6, 6), 600, 13.13, 277.39, (8, 8)),
    ("large", (7, 9), 800, 6.7, 273.99, (9, 12)),
])
def test_d4rl_task_constants(maze, goal, limit, low, high, shape):
    env = Maze2DEnv(maze)
    assert env.layout.shape == shape
    assert np.array_equal(env.target, goal)
    assert env.max_episode_steps == limit
    assert env.normalized_score(low) == pytest.approx(0.0)
    assert env.normalized_score(high) == pytest.approx(100.0)
    assert (env.observation_dim, env.action_dim) == (4, 2)


def test_physics_constants_in_compiled_model(umaze):
    model = umaze.model
    assert model.opt.timestep == pytest.approx(0.01)
    np.testing.assert_allclose(model.actuator_gear[:, 0], [100.0, 100.0])
    np.testing.assert_allclose(model.actuator_ctrlrange, [[-1, 1], [-1, 1]])
    np.testing.assert_allclose(model.dof_damping, [1.0, 1.0])
    # sphere of radius 0.1 at density 1000
    assert model.body_mass[1] == pytest.approx(1000 * 4 / 3 * np.pi * 0.1 ** 3)


def test_geometry_cells_walls_and_free_space(umaze):
    assert umaze.open_cells() == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 1), (3, 2), (3, 3)]
    assert umaze.xy_to_cell(umaze.cell_to_xy((3, 2))) == (3, 2)
    # cell squares are centred 0.2 below the nominal point: cell 1 spans x in [0.3, 1.3)
    assert umaze.xy_to_cell((1.35, 1.0)) == (2, 1)
    assert umaze.xy_to_cell((0.35, 1.0)) == (1, 1)
    boxes = umaze.wall_boxes()
    assert len(boxes) == int(umaze.layout.sum())
    centers = {tuple(np.round(center, 6)) for center, _ in boxes}
    assert (1.8, 0.8) in centers  # wall (2, 1) at (2 + 1 - 1.2, 1 + 1 - 1.2)
    assert umaze.is_free((1.0, 1.0)) and umaze.is_free((1.19, 1.0))
    assert not umaze.is_free((1.21, 1.0))  # within the radius of wall (2, 1), whose face is x = 1.3
    assert not umaze.is_free((2.0, 1.0))  # inside the wall
    assert not umaze.is_free((-5.0, 20.0))  # outside the maze


def test_wall_stops_the_mass(umaze):
    umaze.reset(start_cell=(1, 1))
    umaze.set_state((1.0, 1.0), (0.0, 0.0))
    for _ in range(100):
        observation, *_ = umaze.step([1.0, 0.0])  # push +x into wall (2, 1)
    face = 1.3 - L.PARTICLE_RADIUS
    assert face - 0.05 < observation[0] < face + 0.01
    assert abs(observation[2]) < 0.05


def test_free_motion_accelerates_and_velocity_is_clipped(umaze):
    umaze.reset(start_cell=(3, 1))
    umaze.set_state((3.0, 1.0), (0.0, 0.0))
    observation, *_ = umaze.step([0.0, 1.0])
    assert observation[3] == pytest.approx(0.01 * 100 / umaze.model.body_mass[1], rel=0.02)
    umaze.set_state((3.0, 2.0), (9.0, -9.0))
    observation, *_ = umaze.step([0.0, 0.0])
    assert np.all(np.abs(observation[2:]) <= L.VELOCITY_LIMIT + 1e-9)
    assert np.all(np.abs(observation[2:]) > 4.9)


def test_action_is_clipped_and_checked(umaze):
    umaze.reset(seed=3)
    state = umaze.observation()
    big, *_ = umaze.step([50.0, -50.0])
    umaze.set_state(state[:2], state[2:])
    unit, *_ = umaze.step([1.0, -1.0])
    np.testing.assert_allclose(big, unit)
    for bad in ([np.nan, 0.0], [0.0, np.inf], [1.0], "go"):
        with pytest.raises(ValueError, match="action"):
            umaze.step(bad)


def test_reward_only_near_goal_and_done_at_limit():
    env = Maze2DEnv("umaze", seed=1)
    env.reset(start_cell=(3, 3))
    assert env.reward((1.0, 1.49)) == 1.0 and env.reward((1.0, 1.51)) == 0.0
    total, done, steps = 0.0, False, 0
    while not done:
        _, reward, done, _ = env.step([0.0, 0.0])
        total, steps = total + reward, steps + 1
    assert steps == 300 and total == 0.0  # far from the goal and not moving


def test_reset_distribution_and_determinism():
    first, second = Maze2DEnv("medium", seed=7), Maze2DEnv("medium", seed=7)
    starts = np.array([first.reset() for _ in range(50)])
    np.testing.assert_array_equal(starts, [second.reset() for _ in range(50)])
    cells = [first.xy_to_cell(s[:2]) for s in starts]
    assert all(cell in first.open_cells() for cell in cells)
    offsets = starts[:, :2] - np.round(starts[:, :2])
    assert np.all(np.abs(offsets) <= 0.1) and np.std(offsets) > 0.03
    assert 0.05 < np.std(starts[:, 2:]) < 0.2
    np.testing.assert_array_equal(first.reset(seed=11), second.reset(seed=11))


def test_multi_goal_draws_goals_and_explicit_cells():
    env = Maze2DEnv("large", seed=0, multi_goal=True)
    goals = {env.xy_to_cell(np.round(env.target)) for _ in range(20) if env.reset() is not None}
    assert len(goals) > 5 and goals <= set(env.open_cells())
    env.reset(start_cell=(1, 1), goal_cell=(3, 4))
    assert np.array_equal(env.target, (3, 4))
    np.testing.assert_allclose(env.observation()[:2], (1, 1), atol=0.1)
    with pytest.raises(ValueError, match="not an open cell"):
        env.reset(goal_cell=(0, 0))
    with pytest.raises(ValueError, match="target"):
        env.set_target((np.nan, 1.0))


def test_unknown_maze_is_rejected():
    with pytest.raises(ValueError, match="unknown maze"):
        Maze2DEnv("huge")


def test_dynamics_reproduce_d4rl_reference_scores():
    """D4RL's ref scores: its expert script reuses one controller for 100 episodes (ref max),
    and a uniform random policy (ref min); our env must land near both on U-Maze."""
    env = Maze2DEnv("umaze", seed=0)
    expert, rng = WaypointExpert(env.layout, np.random.default_rng(0)), np.random.default_rng(0)
    expert_returns, random_returns = [], []
    for policy, returns in ((expert, expert_returns), (None, random_returns)):
        for _ in range(100):  # D4RL's scripts average 100 episodes
            observation, total = env.reset(), 0.0
            for _ in range(env.max_episode_steps):
                action = (rng.uniform(-1, 1, 2) if policy is None
                          else policy.action(*observation.tolist(), env.target)[:2])
                observation, reward, _, _ = env.step(action)
                total += reward
            returns.append(total)
    assert 140 < np.mean(expert_returns) < 190  # D4RL: 161.86; seeds 0-7 give 151-184
    assert 10 < np.mean(random_returns) < 40  # D4RL: 23.85; seeds 0-7 give 15-34
