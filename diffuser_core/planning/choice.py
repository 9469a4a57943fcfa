"""Choosing among sampled plans by models learned from the offline data (no map): the planner samples
N plans in one batch and keeps the cheapest under a rank (Planner.plan's `candidates`, `rank`).
"""
from __future__ import annotations

import numpy as np

from diffuser_core.model.reachability import ReachabilityModel
from diffuser_core.model.visit_density import VisitDensity


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
