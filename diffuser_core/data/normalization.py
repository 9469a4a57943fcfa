"""Per-dimension normalizers: the diffusion model works on trajectories scaled to about [-1, 1].

Both normalizers are affine maps x -> (x - offset) / scale, fitted differently:
LimitsNormalizer maps each dimension's [min, max] to [-1, 1] (bounded states), GaussianNormalizer to zero
mean and unit variance. They accept numpy arrays and torch tensors alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

MIN_SCALE = 1e-6  # default smallest scale: a constant dimension keeps a finite one


class AffineNormalizer:
    """x -> (x - offset) / scale for each of the last-axis dimensions."""

    kind = "affine"

    def __init__(self, offset: np.ndarray, scale: np.ndarray):
        offset = np.asarray(offset, dtype=np.float32).reshape(-1)
        scale = np.asarray(scale, dtype=np.float32).reshape(-1)
        if offset.shape != scale.shape:
            raise ValueError(f"normalizer offset {offset.shape} and scale {scale.shape} differ")
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("normalizer parameters must be finite with positive scale")
        self.offset, self.scale = offset, scale
        self._torch_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def dim(self) -> int:
        return self.offset.shape[0]

    def normalize(self, x, dims: Sequence[int] | None = None):
        """Robot units -> model units; `dims` selects which dimensions x's last axis holds."""
        offset, scale = self._params_like(x, dims)
        return (x - offset) / scale

    def unnormalize(self, x, dims: Sequence[int] | None = None):
        """Model units -> robot units (inverse of normalize)."""
        offset, scale = self._params_like(x, dims)
        return x * scale + offset

    def _params_like(self, x, dims):
        if dims is None:
            expected = self.dim
        else:
            dims = list(dims)
            expected = len(dims)
        if x.shape[-1] != expected:
            raise ValueError(f"{type(self).__name__} expects last dimension {expected}, "
                             f"got shape {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            key = (x.device, x.dtype)
            if key not in self._torch_cache:
                self._torch_cache[key] = (torch.as_tensor(self.offset, dtype=x.dtype, device=x.device),
                                          torch.as_tensor(self.scale, dtype=x.dtype, device=x.device))
            offset, scale = self._torch_cache[key]
        else:
            offset, scale = self.offset, self.scale
        if dims is not None:
            offset, scale = offset[dims], scale[dims]
        return offset, scale


class LimitsNormalizer(AffineNormalizer):
    """Maps each dimension's data range [min, max] to [-1, 1]."""

    kind = "limits"

    @classmethod
    def fit(cls, data: np.ndarray, min_scale: float = MIN_SCALE) -> "LimitsNormalizer":
        """Fit to the per-dimension min and max of data (N, dim); no scale below `min_scale`."""
        data = _as_2d(data)
        low, high = data.min(axis=0), data.max(axis=0)
        return cls((low + high) / 2, np.maximum((high - low) / 2, check_min_scale(min_scale)))


class GaussianNormalizer(AffineNormalizer):
    """Maps each dimension to zero mean and unit standard deviation."""

    kind = "gaussian"

    @classmethod
    def fit(cls, data: np.ndarray, min_scale: float = MIN_SCALE) -> "GaussianNormalizer":
        """Fit to the per-dimension mean and standard deviation of data (N, dim); no scale below
        `min_scale`."""
        data = _as_2d(data)
        return cls(data.mean(axis=0), np.maximum(data.std(axis=0), check_min_scale(min_scale)))


NORMALIZER_KINDS = {"limits": LimitsNormalizer, "gaussian": GaussianNormalizer}


def check_min_scale(min_scale: float, name: str = "normalizer min_scale") -> float:
    """min_scale as a float; ValueError naming `name` unless it is a positive finite number."""
    if not (isinstance(min_scale, (int, float)) and not isinstance(min_scale, bool)
            and np.isfinite(min_scale) and min_scale > 0):
        raise ValueError(f"{name} must be a positive number, got {min_scale!r}")
    return float(min_scale)


def _as_2d(data) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"normalizer needs a non-empty (N, dim) array, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("normalizer data contains NaN or inf")
    return data


class TrajectoryNormalizer:
    """Normalizes trajectories whose rows are [action, observation] (actions first)."""

    def __init__(self, actions: AffineNormalizer, observations: AffineNormalizer):
        if type(actions) is not type(observations):
            raise ValueError("action and observation normalizers must be of the same kind")
        self.actions, self.observations = actions, observations
        self.transitions = type(actions)(np.concatenate([actions.offset, observations.offset]),
                                         np.concatenate([actions.scale, observations.scale]))

    @classmethod
    def fit(cls, observations: np.ndarray, actions: np.ndarray, kind: str = "limits",
            min_scale: float = MIN_SCALE):
        """Fit one normalizer of `kind` ("limits" | "gaussian") to all observations and actions.
        `min_scale` (robot units) keeps dimensions that hardly vary in the data (simulator jitter
        of a quantity that is constant in practice) from being blown up to unit size in model units."""
        if kind not in NORMALIZER_KINDS:
            raise ValueError(f"normalizer kind must be one of {sorted(NORMALIZER_KINDS)}, got {kind!r}")
        normalizer = NORMALIZER_KINDS[kind]
        return cls(normalizer.fit(actions, min_scale), normalizer.fit(observations, min_scale))

    @property
    def kind(self) -> str:
        return self.actions.kind

    @property
    def action_dim(self) -> int:
        return self.actions.dim

    @property
    def observation_dim(self) -> int:
        return self.observations.dim

    def normalize(self, trajectory, dims: Sequence[int] | None = None):
        """Robot-unit trajectory (..., action_dim + observation_dim) -> model units."""
        return self.transitions.normalize(trajectory, dims)

    def unnormalize(self, trajectory, dims: Sequence[int] | None = None):
        """Model-unit trajectory -> robot units."""
        return self.transitions.unnormalize(trajectory, dims)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Statistics as named tensors (stored in checkpoints)."""
        return {"actions.offset": torch.from_numpy(self.actions.offset.copy()),
                "actions.scale": torch.from_numpy(self.actions.scale.copy()),
                "observations.offset": torch.from_numpy(self.observations.offset.copy()),
                "observations.scale": torch.from_numpy(self.observations.scale.copy())}

    @classmethod
    def from_state_dict(cls, kind: str, state: dict[str, torch.Tensor]) -> "TrajectoryNormalizer":
        """Rebuild from `state_dict()` output and the normalizer kind."""
        if kind not in NORMALIZER_KINDS:
            raise ValueError(f"unknown normalizer kind {kind!r}")
        missing = {"actions.offset", "actions.scale", "observations.offset",
                   "observations.scale"} - set(state)
        if missing:
            raise ValueError(f"normalizer state lacks {sorted(missing)}")
        normalizer = NORMALIZER_KINDS[kind]
        array = {name: tensor.numpy() for name, tensor in state.items()}
        return cls(normalizer(array["actions.offset"], array["actions.scale"]),
                   normalizer(array["observations.offset"], array["observations.scale"]))
