"""D4RL hdf5 I/O: round trip, clear errors on bad files, episode splitting, Maze2D segments."""
import h5py
import numpy as np
import pytest

from diffuser_core.data.d4rl_hdf5 import DatasetError, load_d4rl_hdf5, split_episodes, write_d4rl_hdf5
from diffuser_core.tasks.maze2d.episodes import (
    load_segments as load_maze2d_episodes,
    maze2d_episodes,
    maze2d_segment_ends,
)


def _stream(length=10, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "observations": rng.normal(size=(length, 4)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
        "rewards": np.zeros(length, dtype=np.float32),
        "terminals": np.zeros(length, dtype=bool),
        "timeouts": np.zeros(length, dtype=bool),
        "infos/goal": rng.normal(size=(length, 2)).astype(np.float32),
    }


def test_round_trip_keeps_keys_values_and_dtypes(tmp_path):
    data = _stream()
    path = write_d4rl_hdf5(tmp_path / "d.hdf5", data, attrs={"maze": "umaze"})
    loaded = load_d4rl_hdf5(path)
    assert set(loaded) == set(data)
    for key in data:
        assert loaded[key].dtype == data[key].dtype
        np.testing.assert_array_equal(loaded[key], data[key])
    with h5py.File(path) as file:  # D4RL's nesting: group 'infos', dataset 'goal'
        assert isinstance(file["infos"], h5py.Group) and "goal" in file["infos"]


def test_reads_d4rl_variants(tmp_path):
    path = tmp_path / "maze2d-umaze-sparse-v1.hdf5"
    data = _stream(6)
    with h5py.File(path, "w") as file:  # as D4RL's own writer: (N, 1) rewards, metadata scalars
        for key, value in data.items():
            file.create_dataset(key, data=value[:, None] if key == "rewards" else value)
        file["metadata/algorithm"] = "waypoint"
    loaded = load_d4rl_hdf5(path)
    assert loaded["rewards"].shape == (6,) and loaded["metadata/algorithm"] == b"waypoint"


def test_missing_file_and_non_hdf5_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_d4rl_hdf5(tmp_path / "absent.hdf5")
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"this is not hdf5")
    with pytest.raises(DatasetError, match="not a readable hdf5"):
        load_d4rl_hdf5(junk)


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d.pop("actions"), "missing keys"),
    (lambda d: d.update(rewards=d["rewards"][:-1]), "'rewards' has 9 rows"),
    (lambda d: d["observations"].__setitem__((4, 1), np.nan), "non-finite value at step 4"),
    (lambda d: d.update(actions=d["actions"].reshape(-1)), "rows"),
])
def test_malformed_data_is_rejected_on_write_and_load(tmp_path, corrupt, message):
    data = _stream()
    corrupt(data)
    with pytest.raises(DatasetError, match=message):
        write_d4rl_hdf5(tmp_path / "w.hdf5", data)
    path = tmp_path / "r.hdf5"
    with h5py.File(path, "w") as file:
        for key, value in data.items():
            file.create_dataset(key, data=value)
    with pytest.raises(DatasetError, match=message):
        load_d4rl_hdf5(path)
    assert isinstance(DatasetError("x"), ValueError)


def test_split_episodes_on_terminals_and_timeouts():
    data = _stream(10)
    data["terminals"][2] = True
    data["timeouts"][6] = True
    episodes = split_episodes(data)
    assert [len(e["observations"]) for e in episodes] == [3, 4]  # tail 7..9 has no end: dropped
    np.testing.assert_array_equal(episodes[1]["actions"], data["actions"][3:7])
    with_tail = split_episodes(data, keep_incomplete=True)
    assert [len(e["rewards"]) for e in with_tail] == [3, 4, 3]
    with pytest.raises(DatasetError, match="ends must have shape"):
        split_episodes(data, ends=np.zeros(3, dtype=bool))


def test_maze2d_segments_end_when_leaving_the_goal():
    # x along a line through the umaze goal (1, 1): out, in, in, out, out, in, out
    x = np.array([2.0, 1.2, 1.0, 1.6, 2.0, 1.4, 1.7])
    observations = np.stack([x, np.ones_like(x), np.zeros_like(x), np.zeros_like(x)], axis=1)
    ends = maze2d_segment_ends(observations, (1.0, 1.0))
    np.testing.assert_array_equal(ends, [0, 0, 1, 0, 0, 1, 0])
    tight = maze2d_segment_ends(observations, (1.0, 1.0), threshold=0.1)
    np.testing.assert_array_equal(tight, [0, 0, 1, 0, 0, 0, 0])

    data = _stream(7)
    data["observations"] = observations.astype(np.float32)
    data["timeouts"][:] = True  # the file's own timeouts are replaced, as in the reference code
    episodes = maze2d_episodes(data, "umaze")
    # segments [0..2] and [3..5], each without its last step
    assert [len(e["observations"]) for e in episodes] == [2, 2]
    np.testing.assert_array_equal(episodes[1]["next_observations"], data["observations"][4:6])


def test_load_maze2d_episodes_needs_to_know_the_maze(tmp_path):
    path = write_d4rl_hdf5(tmp_path / "mystery.hdf5", _stream())
    with pytest.raises(DatasetError, match="cannot tell which maze"):
        load_maze2d_episodes(path)
    assert load_maze2d_episodes(path, maze="large") == []  # far from the goal: no segment ends
