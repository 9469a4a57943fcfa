"""A keep-out shield between the plan tracker and the robot: it brakes an acceleration-commanded
robot before it can come closer than `keep_off` to an obstacle cell of a costmap, whatever the
tracked plan says (nav2's collision monitor, as a braking rule instead of a stop zone).

A guided plan steers clear of obstacles; the shield covers what guidance cannot promise: a costmap
that arrives while the robot is moving toward the cell, and tracking errors of a plan that grazes it.
The rule: with d the distance to the nearest obstacle cell, n its direction away from the obstacle,
and s = -v.n the speed toward it, the robot must stop within the room it has,
    d - keep_off >= s * tick + s^2 / (2 * deceleration);
when it has less, the command's component along n becomes a full push away (and never points toward
the obstacle once the robot is within keep_off); the component along the obstacle is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffuser_core.planar.costmap import GridField, OccupancyMap


@dataclass(frozen=True)
class Braking:
    """A robot's braking model: the deceleration (m/s^2) it surely reaches under a full command
    (choose it below what it does reach), and the s a command lasts before the next one (its
    reaction time, state age included)."""

    deceleration: float
    reaction: float

    def __post_init__(self):
        for name in ("deceleration", "reaction"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"braking {name} must be a positive number, got {value}")


class KeepOutShield:
    """Filters commands (accelerations along x, y, in command units) of a robot at a position with a
    velocity. deceleration: m/s^2 the robot surely reaches under a full command (choose it below what
    it does reach); tick: s a command lasts; limit: the command's bound on each axis."""

    def __init__(self, obstacles: OccupancyMap, keep_off: float, deceleration: float, tick: float,
                 limit: float = 1.0):
        for name, value in (("keep_off", keep_off), ("deceleration", deceleration), ("tick", tick), ("limit", limit)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"shield {name} must be a positive number, got {value}")
        self.keep_off, self.deceleration, self.tick, self.limit = keep_off, deceleration, tick, limit
        self.active = obstacles.any_occupied
        self.distance = GridField(obstacles.signed_distance(), obstacles) if self.active else None

    def clearance(self, position) -> tuple[float, np.ndarray]:
        """(m to the nearest obstacle cell, unit direction away from it) at `position` (x, y)."""
        xy = torch.tensor(np.asarray(position, dtype=np.float64)[:2], requires_grad=True)
        distance = self.distance(xy)
        (gradient,) = torch.autograd.grad(distance, xy)
        gradient = gradient.numpy()
        norm = float(np.linalg.norm(gradient))
        return float(distance.detach()), (gradient / norm if norm > 1e-9 else np.zeros(2))

    def room_needed(self, approach_speed: float) -> float:
        """m the robot needs to stop from `approach_speed` toward an obstacle, keep_off included."""
        s = max(approach_speed, 0.0)
        return self.keep_off + s * self.tick + s * s / (2.0 * self.deceleration)

    def filter(self, position, velocity, command) -> np.ndarray:
        """The command, braked toward the nearest obstacle when the robot could not stop in time."""
        command = np.asarray(command, dtype=np.float64)
        if not self.active:
            return command
        velocity = np.asarray(velocity, dtype=np.float64)[:2]
        distance, away = self.clearance(position)
        if not away.any():  # on a ridge between obstacles or deep inside one: brake along the motion
            speed = float(np.linalg.norm(velocity))
            away = -velocity / speed if speed > 1e-9 else away
        approach = -float(velocity @ away)
        if distance >= self.room_needed(approach) or not away.any():
            return command
        along = float(command @ away)
        pushed = self.limit if approach > 0 else max(along, 0.0)
        return self._fit(command - along * away, pushed * away)

    def _fit(self, tangential: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """normal + the largest share of tangential that keeps every axis within the limit."""
        normal = normal * min(1.0, self.limit / max(float(np.abs(normal).max()), 1e-12))
        for share in (1.0, 0.5, 0.25, 0.0):
            command = normal + share * tangential
            if np.abs(command).max() <= self.limit + 1e-12:
                return command
        return normal
