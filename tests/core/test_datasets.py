"""Episodes -> windows: counts, padding, returns, the hdf5 loader and the loader registry."""
import h5py
import numpy as np
import pytest

from diffuser_core.data.datasets import (
    Episode,
    SequenceDataset,
    ValueDataset,
    discounted_returns,
    fit_normalizer,
    load_hdf5_episodes,
    resolve_loader,
)


def ramp_episode(length, offset=0.0):
    steps = np.arange(length, dtype=np.float32)[:, None]
    return Episode(np.hstack([steps + offset, -steps]), np.cos(steps), np.ones(length))


@pytest.fixture
def episodes():
    return [ramp_episode(10), ramp_episode(4, 100.0), ramp_episode(6, 50.0)]


def test_windows_stay_inside_episodes_without_padding(episodes):
    dataset = SequenceDataset(episodes, 5, fit_normalizer(episodes))
    assert len(dataset) == (10 - 5 + 1) + (6 - 5 + 1)  # the 4-step episode is too short
    window = dataset[0]["trajectories"]
    assert window.shape == (5, 3)
    restored = dataset.normalizer.unnormalize(window.numpy())
    assert np.allclose(restored[:, 1], np.arange(5), atol=1e-4)  # observation x, actions first


def test_edge_padding_repeats_last_state_with_zero_action(episodes):
    dataset = SequenceDataset(episodes, 5, fit_normalizer(episodes), padding="edge")
    assert len(dataset) == 10 + 4 + 6
    last_window = dataset.normalizer.unnormalize(dataset[len(dataset) - 1]["trajectories"].numpy())
    assert np.allclose(last_window[:, 1], 55.0, atol=1e-3)  # final x of the 6-step episode
    assert np.allclose(last_window[1:, 0], 0.0, atol=1e-5)  # padded rows do not act


def test_value_dataset_targets_are_discounted_returns(episodes):
    dataset = ValueDataset(episodes, 5, fit_normalizer(episodes), discount=0.5)
    assert np.isclose(float(dataset[0]["values"]), sum(0.5 ** k for k in range(10)))
    assert np.allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.9), [1 + 0.81 * 2, 1.8, 2.0])


def test_dataset_errors_are_clear(episodes):
    normalizer = fit_normalizer(episodes)
    with pytest.raises(ValueError, match="at least 20 steps long"):
        SequenceDataset(episodes, 20, normalizer)
    with pytest.raises(ValueError, match="padding"):
        SequenceDataset(episodes, 5, normalizer, padding="zeros")
    with pytest.raises(ValueError, match="rewards"):
        ValueDataset([Episode(np.zeros((6, 2)), np.zeros((6, 1)))], 5, normalizer)
    with pytest.raises(ValueError, match="equal T"):
        Episode(np.zeros((6, 2)), np.zeros((5, 1)))


def test_hdf5_loader_splits_at_terminals_and_timeouts(tmp_path):
    path = tmp_path / "data.hdf5"
    ends = np.zeros(12, dtype=bool)
    terminals, timeouts = ends.copy(), ends.copy()
    terminals[3], timeouts[8] = True, True
    with h5py.File(path, "w") as file:
        file["observations"] = np.arange(24, dtype=np.float32).reshape(12, 2)
        file["actions"] = np.zeros((12, 1), dtype=np.float32)
        file["rewards"] = np.arange(12, dtype=np.float32)
        file["terminals"], file["timeouts"] = terminals, timeouts
    loaded = load_hdf5_episodes(str(path))
    assert [len(e) for e in loaded] == [4, 5, 3]
    assert loaded[1].observations[0, 0] == 8 and loaded[2].rewards[-1] == 11


def test_loader_registry_resolves_names_and_dotted_paths():
    assert resolve_loader("hdf5") is load_hdf5_episodes
    assert resolve_loader("diffuser_core.data.datasets:load_hdf5_episodes") is load_hdf5_episodes
    with pytest.raises(ValueError, match="unknown dataset loader"):
        resolve_loader("maze9000")
    with pytest.raises(ValueError, match="cannot load"):
        resolve_loader("diffuser_core.data.datasets:no_such_function")
