"""Guides J(tau, t) for guided sampling (paper §3.2): p~(tau) ∝ p(tau) h(tau).

A guide is any callable `guide(x, t) -> (batch,)` returning a *reward to maximise*, where
x is the trajectory in NORMALIZED (model) units, shape (batch, horizon, transition_dim) with
actions first, and t the (batch,) diffusion step. The sampler moves each step's mean by
alpha * Sigma * grad J. Costs written in robot units go through CostGuide with a normalizer,
which un-normalizes x differentiably before calling the cost.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from diffuser_core.data.normalization import TrajectoryNormalizer


class Guide(Protocol):
    """Anything callable as guide(x, t) -> (batch,) reward on normalized trajectories."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(batch,) reward of normalized trajectories x at diffusion steps t."""


class ValueGuide:
    """J = a learned value model's predicted return of the (noisy) trajectory. With `normalizer`
    (the diffusion model's) and `value_normalizer` (the value model's), x is moved from the first's
    units into the second's; without, both models share one normalization."""

    def __init__(self, value_model: nn.Module, normalizer: TrajectoryNormalizer | None = None,
                 value_normalizer: TrajectoryNormalizer | None = None):
        if (normalizer is None) != (value_normalizer is None):
            raise ValueError("ValueGuide needs both normalizers or neither")
        self.value_model, self.normalizer, self.value_normalizer = value_model.eval(), normalizer, value_normalizer

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.normalizer is not None:
            x = self.value_normalizer.normalize(self.normalizer.unnormalize(x))
        return self.value_model(x, t)


class CostGuide:
    """J = -weight * cost(x, t) for any differentiable cost returning (batch,).

    With `normalizer` the cost sees the trajectory in robot units; without, in normalized units.
    """

    def __init__(self, cost: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weight: float = 1.0,
                 normalizer: TrajectoryNormalizer | None = None):
        if not callable(cost):
            raise ValueError("CostGuide needs a callable cost(x, t) -> (batch,)")
        self.cost, self.weight, self.normalizer = cost, float(weight), normalizer

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.normalizer is not None:
            x = self.normalizer.unnormalize(x)
        cost = self.cost(x, t)
        if cost.shape != (x.shape[0],):
            raise ValueError(f"cost must return shape ({x.shape[0]},), got {tuple(cost.shape)}")
        return -self.weight * cost


class GoalDistanceGuide(CostGuide):
    """Cost = squared distance between the plan's state at time step `t_goal` and a goal,
    over the chosen observation dims (robot units when a normalizer is given)."""

    def __init__(self, goal: Sequence[float], dims: Sequence[int], action_dim: int,
                 weight: float = 1.0, normalizer: TrajectoryNormalizer | None = None,
                 t_goal: int = -1):
        goal = np.asarray(goal, dtype=np.float32).reshape(-1)
        columns = [action_dim + int(d) for d in dims]
        if len(columns) != goal.shape[0]:
            raise ValueError(f"goal has {goal.shape[0]} values but {len(columns)} dims were given")
        target = torch.from_numpy(goal)

        def squared_distance(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return ((x[:, t_goal, columns] - target.to(x)) ** 2).sum(-1)

        super().__init__(squared_distance, weight, normalizer)


class CompositeGuide:
    """J = sum_i weight_i * J_i: several objectives on one model (task compositionality)."""

    def __init__(self, terms: Sequence[tuple[Guide, float]]):
        terms = list(terms)
        if not terms:
            raise ValueError("CompositeGuide needs at least one (guide, weight) pair")
        for term in terms:
            if not (isinstance(term, tuple) and len(term) == 2 and callable(term[0])):
                raise ValueError(f"CompositeGuide terms must be (guide, weight) pairs, got {term!r}")
        self.terms = [(guide, float(weight)) for guide, weight in terms]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sum(weight * guide(x, t) for guide, weight in self.terms)


def combine_guides(guides) -> Guide | None:
    """None, one guide, or a list of guides / (guide, weight) pairs -> one guide (or None)."""
    if guides is None or callable(guides):
        return guides
    terms = [g if isinstance(g, tuple) else (g, 1.0) for g in guides]
    return CompositeGuide(terms) if terms else None
