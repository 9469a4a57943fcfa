"""Variable-horizon receding planning: each replan asks for as many steps as the route still needs.

A fixed-horizon plan that starts close to the goal must still fill all H steps, and a model trained
on long routes then wanders off and back: replanning every 10 steps with a fixed horizon never
settles at the goal (results/perf.md). The temporal U-Net is convolutional in time, so one model can plan
shorter: the steps the previous plan still needed to arrive, plus a margin, rounded up to a length
the U-Net's down-sampling divides. Distances use the state's position columns (`position_dims`),
which the task supplies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PositionDims = tuple[int, ...]


def progress_index(state, plan_observations, elapsed_steps: int, position_dims: PositionDims) -> int:
    """Where along the plan the robot is: the step, among those the elapsed time allows
    (0 .. elapsed_steps), whose position is nearest to the state (latest on ties).

    Indexing by elapsed time alone assumes the robot followed the plan while it was being
    computed; a robot that waited (no plan yet) or lagged would be sent to a waypoint far ahead,
    cutting corners through walls. Taking the nearest of the time-allowed steps skips steps that
    are really in the past and keeps the ones the robot has not reached.
    """
    plan = np.asarray(plan_observations, dtype=np.float64)
    dims = list(position_dims)
    last = int(np.clip(elapsed_steps, 0, len(plan) - 1))
    distances = np.linalg.norm(plan[: last + 1][:, dims] - np.asarray(state, dtype=np.float64)[dims], axis=1)
    return int(last - np.argmin(distances[::-1]))


def arrival_step(plan_observations: np.ndarray, goal, radius: float, position_dims: PositionDims) -> int:
    """The first plan step from which the plan stays within `radius` of the goal position
    (len(plan) when its last state is still outside)."""
    plan = np.asarray(plan_observations, dtype=np.float64)
    dims = list(position_dims)
    goal_position = np.asarray(goal, dtype=np.float64)[dims]
    outside = np.linalg.norm(plan[:, dims] - goal_position, axis=1) > radius
    indices = np.flatnonzero(outside)
    return 0 if indices.size == 0 else int(indices[-1]) + 1


@dataclass(frozen=True)
class ShrinkingHorizon:
    """How long the next plan should be. max_horizon: the model's training horizon (first plan and
    upper bound); multiple: the U-Net's down-sampling factor; position_dims: the state columns
    that are the robot's position; min_horizon: the shortest plan (a
    few plan steps of slack near the goal); margin: steps added to the remaining estimate, so a
    robot slightly behind its plan is not asked to hurry; arrival_radius (m): "arrived"."""

    max_horizon: int
    multiple: int
    position_dims: PositionDims
    min_horizon: int = 16
    margin: int = 8
    arrival_radius: float = 0.25

    def __post_init__(self):
        if self.multiple < 1 or self.max_horizon < 1 or self.max_horizon % self.multiple:
            raise ValueError(f"max_horizon {self.max_horizon} must be a positive multiple of {self.multiple}")
        if not 1 <= self.min_horizon <= self.max_horizon:
            raise ValueError(f"min_horizon must be in [1, {self.max_horizon}], got {self.min_horizon}")
        if self.margin < 0 or not (math.isfinite(self.arrival_radius) and self.arrival_radius > 0):
            raise ValueError("margin must be >= 0 and arrival_radius > 0")
        if not self.position_dims:
            raise ValueError("position_dims must name at least one state column")

    @classmethod
    def for_planner(cls, planner, position_dims: PositionDims, **settings) -> "ShrinkingHorizon":
        """The rule for a Planner: from its configured horizon down, in lengths its U-Net divides."""
        settings.setdefault("min_horizon", min(cls.min_horizon, planner.horizon))
        return cls(planner.horizon, planner.horizon_multiple, tuple(position_dims), **settings)

    def next_horizon(self, previous_plan, state, executed_steps: int, goal) -> int:
        """The horizon for a replan from `state`, `executed_steps` after `previous_plan` (None:
        the first plan, max_horizon). Remaining = the previous plan's arrival step minus how far
        along it the robot is (progress, not elapsed time, so a lagging robot gets more steps)."""
        if previous_plan is None:
            return self.max_horizon
        progress = progress_index(state, previous_plan, executed_steps, self.position_dims)
        remaining = arrival_step(previous_plan, goal, self.arrival_radius, self.position_dims) - progress
        wanted = max(self.min_horizon, remaining + self.margin)
        return int(min(self.max_horizon, math.ceil(wanted / self.multiple) * self.multiple))
