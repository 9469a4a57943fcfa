"""The point mass as a robot of the receding loop: its plan tracking (reference
scripts/plan_maze2d.py), its hold, its braking and its reading of a map.

The plan is a sequence of states (x, y, vx, vy). At step t the next waypoint is the plan's state
t + 1 (after the plan ends: its last state with zero velocity) and the force is
    a = (wp_xy - s_xy) + (wp_v - s_v), clipped to [-1, 1].
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planar.costmap import OccupancyMap
from diffuser_core.planar.shield import Braking
from diffuser_core.planar.surroundings import PlanarBody, PlanarSurroundings, aligned_static
from diffuser_core.planning.hierarchy import interpolated_segments
from diffuser_core.planning.receding import LoopSettings, RecedingController
from diffuser_core.tasks.maze2d.grid import MazeGrid

POSITION_DIM = 2  # the first two state entries are xy, the next two the velocity
POSITION_DIMS = (0, 1)  # the point mass's position columns, for the replanning policy
VELOCITY_DIMS = (2, 3)
# The keep-out shield's braking model: under a full force the mass decelerates at 26-36 m/s^2
# (measured from 1-5 m/s); the shield counts on less than half of that, and on a command reacting
# 50 ms late (a control period plus the state's age over ROS).
BRAKING = Braking(deceleration=12.0, reaction=0.05)


def next_waypoint(plan_observations, t: int) -> np.ndarray:
    """The plan's state at t + 1, or its last state with zero velocity once t + 1 is past it."""
    plan = _checked_plan(plan_observations)
    if not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"t must be a non-negative int step index, got {t!r}")
    if t < len(plan) - 1:
        return plan[t + 1].copy()
    waypoint = plan[-1].copy()
    waypoint[POSITION_DIM:] = 0.0
    return waypoint


def waypoint_tracking_action(state, plan_observations, t: int) -> np.ndarray:
    """Force that tracks the plan at step t: (wp_xy - s_xy) + (wp_v - s_v), clipped to [-1, 1]."""
    plan = _checked_plan(plan_observations)
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (plan.shape[1],):
        raise ValueError(
            f"state must have shape ({plan.shape[1]},) like a plan row, got {state.shape}")
    if not np.all(np.isfinite(state)):
        raise ValueError(f"state must be finite, got {state.tolist()}")
    error = next_waypoint(plan, t) - state
    return np.clip(error[:POSITION_DIM] + error[POSITION_DIM:2 * POSITION_DIM], -1.0, 1.0)


def _checked_plan(plan_observations) -> np.ndarray:
    plan = np.asarray(plan_observations, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[0] < 1 or plan.shape[1] < 2 * POSITION_DIM:
        raise ValueError(f"plan must be (H >= 1, >= 4) states (x, y, vx, vy), got {plan.shape}")
    if not np.all(np.isfinite(plan)):
        raise ValueError("plan contains non-finite values")
    return plan


class PointMass:
    """The Maze2D point mass for the receding loop (diffuser_core.planning.receding.Robot): state
    (x, y, vx, vy), force commands within command_limit; `maze` names the walls its model was
    trained among (they are no obstacles on a costmap), "" for none."""

    command_dim = 2
    position_dims = POSITION_DIMS

    def __init__(self, maze: str = "", command_limit: float = 1.0):
        self.grid = MazeGrid.of_maze(maze) if maze else None
        self.command_limit = command_limit

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Planar distance to the goal position."""
        return float(math.hypot(state[0] - goal[0], state[1] - goal[1]))

    def track(self, state: np.ndarray, plan_observations: np.ndarray, step: int) -> np.ndarray:
        """The reference code's rule toward the plan's state at `step` + 1 (the last state held after
        the plan ends), within the force limit."""
        return self.safe(waypoint_tracking_action(state, plan_observations, max(0, int(step))))

    def hold(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Hold the goal (the reference code's rule once its plan has ended)."""
        return self.track(state, np.asarray(goal)[None, :], 0)

    def safe(self, command: np.ndarray) -> np.ndarray:
        """Clipped to the force limit; anything non-finite or misshapen becomes zero."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.command_dim,) or not np.all(np.isfinite(command)):
            return np.zeros(self.command_dim)
        return np.clip(command, -self.command_limit, self.command_limit)

    def walls(self, like: OccupancyMap) -> OccupancyMap | None:
        """The maze's walls on `like`'s grid, or None without a maze or when the grids differ."""
        if self.grid is None:
            return None
        return aligned_static(self.grid.occupancy_map(like.resolution), like)

    def surroundings(self, occupancy: OccupancyMap, settings: AvoidanceSettings | None) -> PlanarSurroundings:
        """How the mass plans among `occupancy`: the cells beyond the maze's walls are obstacles (all of
        them, walls too, under whole_map)."""
        settings = settings or AvoidanceSettings()
        body = PlanarBody(POSITION_DIMS, VELOCITY_DIMS, BRAKING, self.command_limit)
        return PlanarSurroundings(occupancy, self.walls(occupancy), settings, body)

    @staticmethod
    def segments(kind: str, plan_dt: float):
        """How a hierarchical plan's subgoals are joined for the mass: "linear", or "hermite"
        (curves through their positions with their velocities, units per second, as tangents)."""
        return interpolated_segments(kind, POSITION_DIMS, VELOCITY_DIMS, plan_dt)


def point_mass_controller(planner, settings: LoopSettings, clock: Callable[[], float], maze: str = "",
                          command_limit: float = 1.0, avoidance: AvoidanceSettings | None = None,
                          guides: Sequence = (), sizing=None, choice=None) -> RecedingController:
    """The receding loop of the point mass: the one the planner node runs and the evaluation measures
    (`sizing`: a planning.horizon.HorizonRule for plans to the goal, None: the planner's horizon;
    `choice`: a planning.choice.PlanChoice among sampled plans)."""
    return RecedingController(planner, PointMass(maze, command_limit), settings, clock,
                              avoidance or AvoidanceSettings(), guides, sizing=sizing, choice=choice)
