"""Variable-horizon receding planning: each replan asks for as many steps as the route still needs.

A fixed-horizon plan that starts close to the goal must still fill all H steps, and a model trained
on long routes then wanders off and back: replanning every 10 steps with a fixed horizon never
settles at the goal (results/perf.md). The temporal U-Net is convolutional in time, so one model can plan
shorter: the steps the previous plan still needed to arrive, plus a margin, rounded up to a length
the U-Net's down-sampling divides. Distances use the state's position columns (`position_dims`),
which the task supplies.

The first plan toward a goal can be sized too, from the start and the goal alone (`HorizonSizing`):
the model's fixed training horizon, a straight line (a * distance + b), or a steps-to-go model
learned from the offline data (diffuser_core.model.steps_to_go: scale * predicted steps + margin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

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


HORIZON_RULES = ("fixed", "straight", "learned")


class HorizonRule(Protocol):
    """A plan length from the state and the goal alone (no earlier plan)."""

    def horizon_to(self, state, goal) -> int: ...


@dataclass(frozen=True)
class HorizonBounds:
    """The lengths a planner takes: multiples of `multiple` in [min_horizon, max_horizon]."""

    multiple: int
    min_horizon: int
    max_horizon: int

    def __post_init__(self):
        for name in ("multiple", "min_horizon", "max_horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"horizon {name} must be a positive integer, got {value!r}")
        if self.min_horizon % self.multiple or self.max_horizon % self.multiple:
            raise ValueError(f"min_horizon {self.min_horizon} and max_horizon {self.max_horizon} must be "
                             f"multiples of {self.multiple}")
        if self.min_horizon > self.max_horizon:
            raise ValueError(f"min_horizon {self.min_horizon} exceeds max_horizon {self.max_horizon}")

    def fit(self, wanted: float) -> int:
        """`wanted` steps rounded up to the multiple, then clipped to [min_horizon, max_horizon]."""
        if not math.isfinite(wanted):
            raise ValueError(f"a wanted horizon must be finite, got {wanted}")
        rounded = math.ceil(wanted / self.multiple) * self.multiple
        return int(min(self.max_horizon, max(self.min_horizon, rounded)))


@dataclass(frozen=True)
class StraightLineHorizon:
    """horizon = per_unit * straight-line start-goal distance + offset (steps), within `bounds`."""

    per_unit: float
    offset: float
    position_dims: PositionDims
    bounds: HorizonBounds

    def __post_init__(self):
        if not (math.isfinite(self.per_unit) and self.per_unit >= 0 and math.isfinite(self.offset)):
            raise ValueError(f"straight-line horizon needs per_unit >= 0 and a finite offset, "
                             f"got {self.per_unit}, {self.offset}")
        if not self.position_dims:
            raise ValueError("position_dims must name at least one state column")

    def horizon_to(self, state, goal) -> int:
        """The plan length from `state` to `goal` by their straight-line distance."""
        dims = list(self.position_dims)
        distance = np.linalg.norm(np.asarray(goal, np.float64)[dims] - np.asarray(state, np.float64)[dims])
        return self.bounds.fit(self.per_unit * distance + self.offset)


@dataclass(frozen=True)
class LearnedHorizon:
    """horizon = scale * steps-to-go(state, goal) + margin, within `bounds`; `steps_to_go` predicts
    the steps the offline data needed (diffuser_core.model.steps_to_go.StepsToGo)."""

    steps_to_go: object
    scale: float
    margin: float
    bounds: HorizonBounds

    def __post_init__(self):
        if not (math.isfinite(self.scale) and self.scale > 0 and math.isfinite(self.margin)):
            raise ValueError(f"learned horizon needs scale > 0 and a finite margin, got {self.scale}, {self.margin}")

    def horizon_to(self, state, goal) -> int:
        """The plan length from `state` to `goal` by the steps the data needed between them."""
        return self.bounds.fit(self.scale * float(self.steps_to_go.predict(state, goal)) + self.margin)


@dataclass(frozen=True)
class HorizonSizing:
    """How a plan toward a goal is sized from the start and the goal: `rule` fixed (the planner's
    horizon), straight (per_unit * distance + offset) or learned (scale * steps_to_go's prediction +
    margin; steps_to_go: its safetensors file); min_horizon / max_horizon (None: 16, and twice the
    planner's horizon) bound both."""

    rule: str = "fixed"
    steps_to_go: str | None = None
    scale: float = 1.0
    margin: float = 0.0
    per_unit: float = 50.0
    offset: float = 60.0
    min_horizon: int | None = None
    max_horizon: int | None = None

    def __post_init__(self):
        if self.rule not in HORIZON_RULES:
            raise ValueError(f"horizon rule must be one of {HORIZON_RULES}, got {self.rule!r}")
        if (self.rule == "learned") != (self.steps_to_go is not None):
            raise ValueError("a steps_to_go file goes with the learned horizon rule, and only with it")

    def bounds(self, planner) -> HorizonBounds:
        """The bounds for `planner`: multiples of its horizon_multiple (defaults rounded to them)."""
        multiple = planner.horizon_multiple
        low = self.min_horizon or math.ceil(ShrinkingHorizon.min_horizon / multiple) * multiple
        return HorizonBounds(multiple, low, self.max_horizon or 2 * planner.horizon)

    def rule_for(self, planner, position_dims: PositionDims, steps_to_go=None) -> HorizonRule | None:
        """The rule for `planner` (None: fixed, the planner's own horizon). `steps_to_go`: the loaded
        model (default: loaded from the steps_to_go file)."""
        if self.rule == "fixed":
            return None
        if self.rule == "straight":
            return StraightLineHorizon(self.per_unit, self.offset, tuple(position_dims), self.bounds(planner))
        if steps_to_go is None:
            from diffuser_core.checkpoint import load_steps_to_go

            steps_to_go = load_steps_to_go(self.steps_to_go)
        return LearnedHorizon(steps_to_go, self.scale, self.margin, self.bounds(planner))
