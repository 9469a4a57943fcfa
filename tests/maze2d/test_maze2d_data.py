"""D4RL-style Maze2D data: grid planner, expert controller, generator and its CLI."""
import numpy as np
import pytest

from diffuser_core.data.d4rl_hdf5 import load_d4rl_hdf5, read_hdf5_attrs
from diffuser_core.tasks.maze2d import layouts as L
from diffuser_core.tasks.maze2d.data import DataConfig, WaypointExpert, generate_maze2d_data, greedy_next_cells, main
from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.episodes import load_segments as load_maze2d_episodes


def _path_to(walls, start, goal, next_cell=None):
    cols = walls.shape[1]
    next_cell = greedy_next_cells(walls) if next_cell is None else next_cell
    cell, path = start[0] * cols + start[1], []
    for _ in range(L.MAX_WAYPOINTS):
        cell = int(next_cell[goal[0] * cols + goal[1], cell])
        path.append(divmod(cell, cols))
        if path[-1] == goal:
            return path
    raise AssertionError(f"no path from {start} to {goal}")


def _bfs_distances(walls, source):
    distances, frontier = {source: 0}, [source]
    while frontier:
        i, j = frontier.pop(0)
        for cell in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if not walls[cell] and cell not in distances:
                distances[cell] = distances[(i, j)] + 1
                frontier.append(cell)
    return distances


def test_grid_planner_finds_shortest_paths():
    walls = L.maze_spec("umaze").walls
    assert _path_to(walls, (3, 1), (1, 1)) == [(3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    assert _path_to(walls, (1, 1), (1, 1)) == [(1, 1)]
    large = L.maze_spec("large").walls
    goal, next_cell = (7, 9), greedy_next_cells(large)
    for start, distance in _bfs_distances(large, goal).items():
        path = _path_to(large, start, goal, next_cell)
        assert len(path) == max(distance, 1)
        steps = np.abs(np.diff([start] + path, axis=0)).sum(axis=1)
        assert np.all(steps <= 1)  # one grid move at a time


@pytest.mark.parametrize("start", [(3, 1), (3, 3), (1, 3), (2, 3)])
def test_expert_alone_reaches_fixed_goal_on_umaze(start):
    env = Maze2DEnv("umaze", seed=sum(start))
    observation = env.reset(start_cell=start)
    expert = WaypointExpert(env.layout, np.random.default_rng(0))
    for step in range(env.max_episode_steps):
        ax, ay, solved = expert.action(*observation.tolist(), env.target)
        if solved:
            break
        observation, *_ = env.step([ax, ay])
    assert solved, f"expert from {start} did not reach the goal in 300 steps"
    assert np.linalg.norm(observation[:2] - env.target) < L.EXPERT_SOLVE_THRESHOLD
    assert step < 200


def test_generated_stream_looks_like_d4rl():
    data = generate_maze2d_data(DataConfig("umaze", steps=3000, seed=1))
    assert set(data) == {"observations", "actions", "rewards", "terminals", "timeouts",
                         "infos/goal", "infos/qpos", "infos/qvel"}
    assert data["observations"].shape == (3000, 4) and data["actions"].shape == (3000, 2)
    assert data["observations"].dtype == np.float32 and data["terminals"].dtype == bool
    assert not data["terminals"].any() and data["timeouts"].sum() >= 20  # many goals reached
    assert np.all(np.abs(data["actions"]) <= 1.0)
    np.testing.assert_array_equal(data["infos/qpos"], data["observations"][:, :2])
    # one continuous stream: every step follows from the previous one (no resets)
    jumps = np.linalg.norm(np.diff(data["observations"][:, :2], axis=0), axis=1)
    assert jumps.max() < 0.01 * 5.3 * np.sqrt(2)  # at most one step at the clipped speed
    # sparse reward of the fixed goal, on the current observation (as the hosted files)
    near = np.linalg.norm(data["observations"][:, :2] - (1, 1), axis=1) <= 0.5
    np.testing.assert_array_equal(data["rewards"], near.astype(np.float32))
    # a new goal cell after every arrival; the goal is a noisy open cell
    arrivals = np.flatnonzero(data["timeouts"])
    goal_cells = {tuple(np.round(g).astype(int)) for g in data["infos/goal"][arrivals]}
    assert len(goal_cells) > 3
    assert np.all(np.abs(data["infos/goal"] - np.round(data["infos/goal"])) <= 0.1 + 1e-6)
    env = Maze2DEnv("umaze")  # the walls hold: the mass never enters a wall cell
    assert {env.xy_to_cell(xy) for xy in data["observations"][:, :2]} <= set(env.open_cells())


def test_generation_is_deterministic_and_noise_changes_it():
    first = generate_maze2d_data(DataConfig("medium", steps=500, seed=4))
    again = generate_maze2d_data(DataConfig("medium", steps=500, seed=4))
    noisy = generate_maze2d_data(DataConfig("medium", steps=500, seed=4, action_noise=0.5))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["actions"], noisy["actions"])


@pytest.mark.parametrize("kwargs, message", [
    ({"maze": "tiny"}, "unknown maze"),
    ({"steps": 0}, "steps"),
    ({"seed": -1}, "seed"),
    ({"action_noise": float("nan")}, "action_noise"),
])
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(**kwargs)


def test_default_sizes_follow_d4rl():
    assert [DataConfig(maze).num_steps for maze in ("umaze", "medium", "large")] == [
        1_000_000, 2_000_000, 4_000_000]


def test_cli_writes_a_loadable_d4rl_file(tmp_path, capsys):
    out = tmp_path / "sub" / "umaze.hdf5"
    main(["--maze", "umaze", "--steps", "2000", "--out", str(out), "--seed", "3", "--quiet"])
    assert "2000 steps" in capsys.readouterr().out
    data = load_d4rl_hdf5(out)
    assert len(data["observations"]) == 2000
    assert read_hdf5_attrs(out)["maze"] == "umaze"
    episodes = load_maze2d_episodes(out)  # maze taken from the file's attribute
    assert episodes and all(len(e["observations"]) == len(e["actions"]) for e in episodes)


def test_cli_rejects_bad_steps(tmp_path):
    with pytest.raises(SystemExit, match="steps"):
        main(["--steps", "-5", "--out", str(tmp_path / "x.hdf5"), "--quiet"])
