"""A classical planner with the diffusion planner's interface, for comparison on the same map and in
the same loop: the shortest free route on an occupancy map (costmap.Route: Dijkstra, kept a
clearance off occupied cells, nav2's global path), timed along a speed profile into a plan of states
(position, velocity) that the robot's own tracking rule follows. No learning, no sampling.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from diffuser_core.planar.costmap import OccupancyMap, Route
from diffuser_core.planning.planner import PlanResult


def timed_path(points: np.ndarray, speed: float, acceleration: float, dt: float,
               start_speed: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(positions (T, 2), velocities (T, 2)) every `dt` s along the polyline `points`: speed up from
    `start_speed` and slow down to rest at its end at `acceleration`, at most `speed` between."""
    steps = np.diff(points, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    keep = np.concatenate([[True], lengths > 1e-9])
    points = points[keep]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    total = float(arc[-1])
    if len(points) < 2 or total < 1e-9:
        return points[:1].copy(), np.zeros((1, 2))

    def speed_at(s: float) -> float:
        return min(speed, math.sqrt(start_speed ** 2 + 2 * acceleration * s), math.sqrt(2 * acceleration * (total - s)))

    travelled, samples = [0.0], 0
    while travelled[-1] < total and samples < 100000:
        travelled.append(min(total, travelled[-1] + max(speed_at(travelled[-1]), acceleration * dt) * dt))
        samples += 1
    travelled = np.array(travelled)
    positions = np.stack([np.interp(travelled, arc, points[:, k]) for k in range(2)], axis=1)
    velocities = np.gradient(positions, dt, axis=0) if len(positions) > 1 else np.zeros_like(positions)
    velocities[-1] = 0.0
    return positions, velocities


class RoutePlanner:
    """Plans (like diffuser_core.planning.planner.Planner.plan) the timed shortest route from the
    state to the goal on `occupancy`: states with the route's positions at `position_dims` and its
    velocities at `velocity_dims`. `speed` (m/s) and `acceleration` (m/s^2) shape the timing; `dt`
    is the plan's step. Arguments a diffusion planner takes (guides, candidates, ...) are ignored."""

    horizon_multiple = 1

    def __init__(self, occupancy: OccupancyMap, state_dim: int, position_dims: Sequence[int],
                 velocity_dims: Sequence[int], speed: float, acceleration: float, dt: float,
                 clearance: float = 0.3, horizon: int = 100000):
        for name, value in (("speed", speed), ("acceleration", acceleration), ("dt", dt)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"route planner {name} must be a positive number, got {value}")
        self.occupancy, self.state_dim, self.clearance = occupancy, state_dim, clearance
        self.position_dims, self.velocity_dims = list(position_dims), list(velocity_dims)
        self.speed, self.acceleration, self.dt, self.horizon = speed, acceleration, dt, horizon
        self.action_dim, self.normalizer = 0, None
        self.routes: dict[tuple, Route] = {}

    def reset(self) -> None:
        """Nothing to forget: every plan is made afresh."""

    def plan(self, observation, goal=None, goal_dims=None, executed_steps: int = 0, horizon=None,
             **ignored) -> PlanResult:
        """The timed route from `observation` to `goal` (its positions)."""
        started = time.perf_counter()
        state = np.asarray(observation, dtype=np.float64)
        target = np.asarray(goal if goal is not None else observation, dtype=np.float64)
        goal_xy = target[self.position_dims] if goal_dims is None or len(target) == self.state_dim else target
        key = tuple(np.round(goal_xy, 6))
        if key not in self.routes:
            self.routes[key] = Route(self.occupancy, goal_xy, self.clearance)
        points = self.routes[key].path(state[self.position_dims])
        heading = points[min(1, len(points) - 1)] - points[0]
        along = float(state[self.velocity_dims] @ heading / max(np.linalg.norm(heading), 1e-9))
        positions, velocities = timed_path(points, self.speed, self.acceleration, self.dt, max(along, 0.0))
        observations = np.zeros((len(positions), self.state_dim), dtype=np.float32)
        observations[:, self.position_dims], observations[:, self.velocity_dims] = positions, velocities
        observations[0] = state
        actions = np.zeros((len(positions), 0), dtype=np.float32)
        return PlanResult(observations, actions, actions[0].copy(), 0, (time.perf_counter() - started) * 1e3, False)
