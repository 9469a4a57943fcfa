"""When to replan and what to track: the decisions of the receding-horizon loop (receding.py).

Pure Python, with every time given by the caller (the node's clock, or simulated time offline):
whether to replan at a tick, the horizon and warm-start shift of each replan, which plan step to
track at a control tick, and whether a plan is too old to track. Distances are between positions:
the state columns `position_dims` that the task supplies. The settings are a LoopSettings (or
anything with its replan_deviation, settle_distance, max_plan_age, plan_dt and shrink_horizon).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diffuser_core.planning.horizon import HorizonRule, PositionDims, ShrinkingHorizon, progress_index

TIME_SLACK = 1e-6  # plan steps: times k * plan_dt computed in floating point still count k steps


@dataclass
class TimedPlan:
    """A plan's states and when it holds: `state_time` is the time of the state it was planned from,
    `start_time` the time its step 0 is taken to start (the state's time when the robot was already
    moving along an earlier plan, so the steps planned during the latency are skipped; the time the
    plan became ready when the robot was waiting for its first plan); `target` what it planned to."""

    observations: np.ndarray
    actions: np.ndarray
    state_time: float
    start_time: float
    target: np.ndarray | None = None  # the goal state it was planned to (a route waypoint, or the goal)


class ReplanningPolicy:
    """When to replan, how long each replan is, and which plan step to track. position_dims: the
    state columns that are the robot's position (a point robot's (0, 1)); sizing: a HorizonRule
    sizing the first plan toward a goal, and every replan unless horizons shrink (None: the
    planner's own horizon)."""

    def __init__(self, settings, goal_tolerance: float, position_dims: PositionDims,
                 horizons: ShrinkingHorizon | None = None, sizing: HorizonRule | None = None):
        self.settings = settings
        self.goal_tolerance = goal_tolerance
        self.position_dims = tuple(position_dims)
        self.horizons = horizons if settings.shrink_horizon else None
        self.sizing = sizing

    @classmethod
    def for_planner(cls, planner, settings, goal_tolerance: float, position_dims: PositionDims,
                    sizing: HorizonRule | None = None) -> "ReplanningPolicy":
        """The policy for a planner (its horizons, when they shrink; `sizing` for first plans)."""
        horizons = ShrinkingHorizon.for_planner(
            planner, position_dims, arrival_radius=min(ShrinkingHorizon.arrival_radius, goal_tolerance))
        return cls(settings, goal_tolerance, position_dims, horizons, sizing)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance between two states' positions."""
        dims = list(self.position_dims)
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64)[dims] - np.asarray(b, dtype=np.float64)[dims]))

    def steps_since_start(self, plan: TimedPlan, time: float) -> int:
        """Plan steps elapsed at `time` since the plan's step 0 (never negative)."""
        return max(0, math.floor((time - plan.start_time) / self.settings.plan_dt + TIME_SLACK))

    def needs_plan(self, state: np.ndarray, state_time: float, goal: np.ndarray, tolerance: float,
                   plan: TimedPlan | None) -> bool:
        """Whether to replan at this tick: without a plan; every tick when replan_deviation is 0;
        when the robot strayed more than replan_deviation from the plan; when the plan is older
        than half of max_plan_age, unless the robot is settling onto the goal with it; when `goal`
        (the target of this tick) lies more than replan_deviation from the plan's target."""
        settings = self.settings
        if plan is None or settings.replan_deviation == 0:
            return True
        elapsed = self.steps_since_start(plan, state_time)
        step = progress_index(state, plan.observations, elapsed, self.position_dims)
        if self.distance(plan.observations[step], state) > settings.replan_deviation:
            return True
        if plan.target is not None and self.distance(plan.target, goal) > settings.replan_deviation:
            return True  # the target moved on (a route waypoint ahead of the robot, or a new goal)
        if self.settling(state, goal, tolerance, plan):
            return False
        return state_time - plan.state_time > settings.max_plan_age / 2

    def settling(self, state: np.ndarray, goal: np.ndarray, tolerance: float, plan: TimedPlan) -> bool:
        """Near the goal (settle_distance) with a plan that ends within `tolerance` of it."""
        return (self.distance(state, goal) <= self.settings.settle_distance
                and self.distance(plan.observations[-1], goal) <= tolerance)

    def executed_steps(self, plan: TimedPlan | None, state_time: float) -> int:
        """How far the robot moved along the previous plan, for the warm start (0 without one)."""
        if plan is None:
            return 0
        return max(0, round((state_time - plan.start_time) / self.settings.plan_dt))

    def horizon(self, plan: TimedPlan | None, state: np.ndarray, state_time: float, goal: np.ndarray) -> int | None:
        """The next plan's horizon: the sizing rule's for a first plan or when horizons do not shrink,
        the shrinking one after a plan, else None (the planner's own)."""
        if self.horizons is None or plan is None:
            return None if self.sizing is None else self.sizing.horizon_to(state, goal)
        return self.horizons.next_horizon(plan.observations, state, self.executed_steps(plan, state_time), goal)

    def too_old(self, plan: TimedPlan, time: float) -> bool:
        """A plan older than max_plan_age is not tracked."""
        return time - plan.state_time > self.settings.max_plan_age

    def tracking_step(self, plan: TimedPlan, time: float) -> int:
        """The plan step a control tick at `time` tracks (the controller aims at the next one)."""
        return self.steps_since_start(plan, time)
