"""Normalizers: limits to [-1, 1], Gaussian, numpy and torch, subsets of dims, state round trip."""
import numpy as np
import pytest
import torch

from diffuser_core.data.normalization import GaussianNormalizer, LimitsNormalizer, TrajectoryNormalizer


@pytest.fixture
def data():
    return np.random.default_rng(0).normal([5.0, -2.0, 0.0], [3.0, 0.1, 10.0], size=(500, 3))


def test_limits_normalizer_maps_data_range_to_unit_interval(data):
    normalized = LimitsNormalizer.fit(data).normalize(data)
    assert np.allclose(normalized.min(axis=0), -1, atol=1e-5)
    assert np.allclose(normalized.max(axis=0), 1, atol=1e-5)


def test_gaussian_normalizer_standardises(data):
    normalized = GaussianNormalizer.fit(data).normalize(data)
    assert np.allclose(normalized.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(normalized.std(axis=0), 1, atol=1e-3)


@pytest.mark.parametrize("kind", [LimitsNormalizer, GaussianNormalizer])
def test_round_trip_in_numpy_and_torch_agree(kind, data):
    normalizer = kind.fit(data)
    as_numpy = normalizer.normalize(data.astype(np.float32))
    as_torch = normalizer.normalize(torch.from_numpy(data.astype(np.float32)))
    assert isinstance(as_torch, torch.Tensor)
    assert np.allclose(as_numpy, as_torch.numpy(), atol=1e-6)
    assert np.allclose(normalizer.unnormalize(as_numpy), data, atol=1e-4)


def test_subset_of_dims_uses_those_dims_statistics(data):
    normalizer = LimitsNormalizer.fit(data)
    full = normalizer.normalize(data)
    assert np.allclose(normalizer.normalize(data[:, [2, 0]], dims=[2, 0]), full[:, [2, 0]])


def test_constant_dimension_stays_finite():
    data = np.stack([np.linspace(0, 1, 10), np.full(10, 4.0)], axis=1)
    normalized = LimitsNormalizer.fit(data).normalize(data)
    assert np.all(np.isfinite(normalized)) and np.allclose(normalized[:, 1], 0)


def test_bad_inputs_give_clear_errors(data):
    with pytest.raises(ValueError, match="NaN"):
        LimitsNormalizer.fit(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="non-empty"):
        GaussianNormalizer.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="last dimension 3"):
        LimitsNormalizer.fit(data).normalize(np.zeros(4))


def test_trajectory_normalizer_puts_actions_first_and_round_trips_state():
    rng = np.random.default_rng(1)
    observations, actions = rng.normal(10, 2, (100, 3)), rng.uniform(-1, 1, (100, 2))
    normalizer = TrajectoryNormalizer.fit(observations, actions, "limits")
    trajectory = np.concatenate([actions, observations], axis=1).astype(np.float32)
    normalized = normalizer.normalize(trajectory)
    assert np.allclose(normalized[:, :2], normalizer.actions.normalize(actions), atol=1e-5)
    assert np.allclose(normalized[:, 2:], normalizer.observations.normalize(observations), atol=1e-5)
    restored = TrajectoryNormalizer.from_state_dict("limits", normalizer.state_dict())
    assert np.array_equal(restored.normalize(trajectory), normalized)
    with pytest.raises(ValueError, match="kind"):
        TrajectoryNormalizer.fit(observations, actions, "minmax")


@pytest.mark.parametrize("kind", [LimitsNormalizer, GaussianNormalizer])
def test_min_scale_keeps_a_jittering_dimension_small(kind):
    """A quantity that is constant in practice but jitters in simulation (a resting block's quaternion,
    ±0.001) is unit-size noise in model units by default; with min_scale it stays small."""
    rng = np.random.default_rng(2)
    data = np.stack([rng.uniform(-1, 1, 1000), 1.0 + rng.uniform(-1e-3, 1e-3, 1000)], axis=1)
    assert np.abs(kind.fit(data).normalize(data)[:, 1] - kind.fit(data).normalize(data)[:, 1].mean()).max() > 0.5
    normalized = kind.fit(data, min_scale=0.05).normalize(data)
    assert np.ptp(normalized[:, 1]) < 0.05
    assert np.allclose(normalized[:, 0], kind.fit(data).normalize(data)[:, 0])  # wider dims unchanged
    with pytest.raises(ValueError, match="min_scale must be a positive number"):
        kind.fit(data, min_scale=0.0)


def test_experiment_config_checks_normalizer_min_scale():
    from diffuser_core.config import DatasetConfig

    assert DatasetConfig(normalizer_min_scale=0.05).normalizer_min_scale == 0.05
    for bad in (0.0, -1.0, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="normalizer_min_scale"):
            DatasetConfig(normalizer_min_scale=bad)
