"""Conditioning as inpainting (paper §3.2): fixed (time step, dimension) entries of a plan.

Constraints such as "start at s0" or "end at the goal" are imposed by overwriting those entries
of the sample before the first denoising step and after every step, so they hold exactly in the
output. Any subset of entries can be fixed: start, goal, waypoints, partial states, actions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

PARTS = ("observation", "action")


@dataclass(frozen=True)
class Constraint:
    """At plan time step `t` (negative counts from the end), the `dims` of the observation (or of
    the action, with part="action") take `values`."""

    t: int
    dims: tuple[int, ...]
    values: tuple[float, ...]
    part: str = "observation"

    def __post_init__(self):
        object.__setattr__(self, "dims", tuple(int(d) for d in np.atleast_1d(self.dims)))
        object.__setattr__(self, "values", tuple(float(v) for v in np.atleast_1d(self.values)))
        if self.part not in PARTS:
            raise ValueError(f"constraint part must be one of {PARTS}, got {self.part!r}")
        if len(self.dims) != len(self.values):
            raise ValueError(f"constraint at t={self.t} has {len(self.dims)} dims but "
                             f"{len(self.values)} values")
        if len(set(self.dims)) != len(self.dims):
            raise ValueError(f"constraint at t={self.t} repeats a dimension: {self.dims}")
        if not np.all(np.isfinite(self.values)):
            raise ValueError(f"constraint at t={self.t} has non-finite values {self.values}")

    def columns(self, action_dim: int, observation_dim: int) -> list[int]:
        """Trajectory columns (actions first) this constraint fixes."""
        size, first = (observation_dim, action_dim) if self.part == "observation" else (action_dim, 0)
        for dim in self.dims:
            if not 0 <= dim < size:
                raise ValueError(f"constraint {self.part} dim {dim} out of range [0, {size})")
        return [first + dim for dim in self.dims]

    def row(self, horizon: int) -> int:
        """Plan time step, resolving negative indices."""
        if not -horizon <= self.t < horizon:
            raise ValueError(f"constraint time step {self.t} outside a plan of horizon {horizon}")
        return self.t % horizon


def constraint_table(constraints: Sequence[Constraint], horizon: int, action_dim: int,
                     observation_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, values) arrays of shape (horizon, transition_dim); later constraints win."""
    mask = np.zeros((horizon, action_dim + observation_dim), dtype=bool)
    values = np.zeros(mask.shape, dtype=np.float32)
    for constraint in constraints:
        row, columns = constraint.row(horizon), constraint.columns(action_dim, observation_dim)
        mask[row, columns] = True
        values[row, columns] = constraint.values
    return mask, values


class Inpainting:
    """Overwrites the masked entries of a (batch, horizon, transition_dim) trajectory with targets.

    `mask` is (horizon, transition_dim); `values` is (horizon, transition_dim) shared by the batch
    or (batch, horizon, transition_dim). Values must be in the space the sampler works in
    (normalized units for the diffusion model).
    """

    def __init__(self, mask: torch.Tensor, values: torch.Tensor):
        if mask.dtype != torch.bool or mask.ndim != 2:
            raise ValueError(f"inpainting mask must be a 2-D bool tensor, got {mask.dtype} {tuple(mask.shape)}")
        if values.shape[-2:] != mask.shape or values.ndim not in (2, 3):
            raise ValueError(f"inpainting values {tuple(values.shape)} do not match mask {tuple(mask.shape)}")
        self.mask, self.values = mask, values.to(mask.device)

    @classmethod
    def none(cls, horizon: int, transition_dim: int, device=None) -> "Inpainting":
        """No fixed entries."""
        return cls(torch.zeros(horizon, transition_dim, dtype=torch.bool, device=device),
                   torch.zeros(horizon, transition_dim, device=device))

    @classmethod
    def from_constraints(cls, constraints: Sequence[Constraint], horizon: int, action_dim: int,
                         observation_dim: int, device=None) -> "Inpainting":
        """Inpainting of constraints whose values are already in the sampler's space."""
        mask, values = constraint_table(constraints, horizon, action_dim, observation_dim)
        return cls(torch.from_numpy(mask).to(device), torch.from_numpy(values).to(device))

    @property
    def horizon(self) -> int:
        return self.mask.shape[0]

    def check(self, x: torch.Tensor) -> None:
        """Raise ValueError unless x's shape fits this inpainting."""
        if x.ndim != 3 or x.shape[1:] != self.mask.shape or (
                self.values.ndim == 3 and self.values.shape[0] != x.shape[0]):
            raise ValueError(f"trajectory {tuple(x.shape)} does not fit inpainting mask "
                             f"{tuple(self.mask.shape)} / values {tuple(self.values.shape)}")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x with every masked entry replaced by its target (exactly)."""
        return torch.where(self.mask, self.values.to(x.dtype), x)

