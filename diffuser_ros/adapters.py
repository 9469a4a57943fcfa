"""Robot adapters: what the planner node needs to know about one kind of robot.

An adapter turns the robot's state message into the planner's observation vector, a goal into the
inpainted goal state (with a reason when the goal is unusable), and a plan into the next command.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped

from diffuser_core.tasks.maze2d.controller import (BRAKING_DECELERATION, POSITION_DIMS, SHIELD_REACTION, shielded,
                                                   waypoint_tracking_action)
from diffuser_core.tasks.maze2d.grid import MazeGrid
from diffuser_core.avoidance import keep_out_shield
from diffuser_core.costmap import OccupancyMap
from diffuser_core.hierarchy import interpolated_segments
from diffuser_ros.conversions import is_finite_pose, odometry_to_state, pose_to_xy


@dataclass
class GoalCheck:
    """The planner's view of a requested goal: the goal state, or why it was refused."""

    goal: np.ndarray | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.goal is not None


class PointMassAdapter:
    """Planar point mass (Maze2D): state (x, y, vx, vy), goal (x, y) at rest, force commands in [-1, 1]."""

    observation_dim = 4
    command_dim = 2
    position_dims = POSITION_DIMS

    def __init__(self, frame_id: str = "map", maze: str = "", command_limit: float = 1.0):
        self.frame_id = frame_id
        self.command_limit = command_limit
        self.grid = MazeGrid.of_maze(maze) if maze else None

    def state_from_odometry(self, message) -> np.ndarray:
        """(x, y, vx, vy); raises ValueError when a value is not finite."""
        state = odometry_to_state(message)
        if not np.all(np.isfinite(state)):
            raise ValueError(f"odometry has non-finite values {state.tolist()}")
        return state

    def check_goal(self, message: PoseStamped) -> GoalCheck:
        """The goal state (x, y, 0, 0), or the reason the pose cannot be a goal."""
        if not is_finite_pose(message):
            return GoalCheck(None, "goal pose has non-finite values")
        frame = message.header.frame_id
        if frame and frame.lstrip("/") != self.frame_id:
            return GoalCheck(None, f"goal is in frame '{frame}', the planner works in '{self.frame_id}'")
        xy = pose_to_xy(message)
        if self.grid is not None and not self.grid.is_free(xy):
            return GoalCheck(None, f"goal ({xy[0]:.2f}, {xy[1]:.2f}) is outside the map or inside a wall")
        return GoalCheck(np.array([xy[0], xy[1], 0.0, 0.0]))

    def static_map(self, like: OccupancyMap) -> OccupancyMap | None:
        """The maze's walls on `like`'s grid (the map the model was trained among, so not obstacles),
        or None without a maze or when the grids differ (every occupied cell is then an obstacle)."""
        if self.grid is None:
            return None
        walls = self.grid.occupancy_map(like.resolution)
        aligned = walls.occupied.shape == like.occupied.shape and np.allclose(walls.origin, like.origin)
        return walls if aligned else None

    @staticmethod
    def segments(kind: str, plan_dt: float):
        """How a hierarchical plan's subgoals are joined for this robot: "linear", or "hermite"
        (curves through their positions with their velocities, units per second, as tangents)."""
        return interpolated_segments(kind, POSITION_DIMS, (2, 3), plan_dt)

    @staticmethod
    def distance(state: np.ndarray, goal: np.ndarray) -> float:
        """Planar distance to the goal position."""
        return float(math.hypot(state[0] - goal[0], state[1] - goal[1]))

    def command(self, state: np.ndarray, plan_observations: np.ndarray, step: int) -> np.ndarray:
        """The reference code's tracking rule toward the plan's state at `step` + 1 (time-indexed,
        the last state held after the plan ends), clipped to the force limit."""
        return self.safe_command(waypoint_tracking_action(state, plan_observations, max(0, step)))

    def shield(self, occupancy: OccupancyMap, static: OccupancyMap | None):
        """The keep-out shield of the cells `occupancy` adds to `static`, for the mass's braking, or None."""
        return keep_out_shield(occupancy, static, BRAKING_DECELERATION, SHIELD_REACTION, self.command_limit)

    @staticmethod
    def shielded(shield, state: np.ndarray, command: np.ndarray) -> np.ndarray:
        """`command`, braked by `shield` before the mass reaches an obstacle (unchanged without one)."""
        return shielded(shield, state, command)

    def hold_command(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Hold the goal (the reference code's rule once the plan has ended)."""
        return self.command(state, goal[None, :], 0)

    def safe_command(self, command: np.ndarray) -> np.ndarray:
        """Clip to the robot's limits; anything non-finite becomes zero."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.command_dim,) or not np.all(np.isfinite(command)):
            return np.zeros(self.command_dim)
        return np.clip(command, -self.command_limit, self.command_limit)


ADAPTERS = {"point_mass": PointMassAdapter}
