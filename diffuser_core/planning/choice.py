"""Choosing among sampled plans by models learned from the offline data (no map): the planner samples
N plans in one batch and keeps the cheapest under a rank (Planner.plan's `candidates`, `rank`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from diffuser_core.model.reachability import ReachabilityModel, load_reachability
from diffuser_core.model.visit_density import VisitDensity, load_visit_density

CHOICE_MODELS = ("", "density", "reachability")  # what ranks sampled plans ("": none, the planner keeps its first)


@dataclass(frozen=True)
class PlanChoice:
    """Sample `candidates` plans in one batch and keep the one `rank` ((N, H, obs) -> (N,) costs) scores lowest."""

    candidates: int
    rank: Callable[[np.ndarray], np.ndarray]

    def __post_init__(self):
        if not isinstance(self.candidates, int) or self.candidates < 1 or not callable(self.rank):
            raise ValueError(f"a plan choice needs candidates >= 1 and a callable rank, got {self.candidates!r}")

    def planning_arguments(self) -> dict:
        """Planner.plan's keyword arguments for this choice."""
        return {"candidates": self.candidates, "rank": self.rank}


def hop_states(plan: np.ndarray, every: int) -> np.ndarray:
    """The plan's states `every` steps apart, its last state always included."""
    plan = np.asarray(plan)
    indices = list(range(0, len(plan), every))
    if indices[-1] != len(plan) - 1:
        indices.append(len(plan) - 1)
    return plan[indices]


def reachability_rank(model: ReachabilityModel, every: int | None = None):
    """A rank ((N, H, obs) plans -> (N,) costs): minus the summed log-probability that each hop of
    `every` steps (default model.max_steps) along the plan is one the data made (a hop through a wall
    costs most)."""
    every = model.max_steps if every is None else int(every)
    if every < 1:
        raise ValueError(f"reachability hops must be at least 1 step, got {every}")

    def costs(observations: np.ndarray) -> np.ndarray:
        plans = [hop_states(plan, every) for plan in np.asarray(observations)]
        return np.array([-model.log_reachable(hops[:-1], hops[1:]).sum() for hops in plans])

    return costs


def density_rank(density: VisitDensity):
    """A rank ((N, H, obs) plans -> (N,) costs): minus the summed log-density of the plan's states under
    the data's visits (a state where the data never went costs most)."""
    return lambda observations: -density.log_density(np.asarray(observations)).sum(axis=-1)


def load_rank(kind: str, path: str):
    """The rank of a model file of the data: a visit density ("density") or a reachability classifier."""
    if kind == "density":
        return density_rank(load_visit_density(path)[0])
    if kind == "reachability":
        return reachability_rank(load_reachability(path)[0])
    raise ValueError(f"a plan choice is by one of {CHOICE_MODELS[1:]}, got {kind!r}")
