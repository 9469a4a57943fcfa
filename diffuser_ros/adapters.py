"""Robot adapters: what the planner node needs to know about one kind of robot's messages.

An adapter turns the robot's state message into the planner's observation vector and a goal pose
into the inpainted goal state (with a reason when the goal is unusable); its `robot` is the core's
model of the robot for the receding loop (tracking rule, hold, limits, reading of a map).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped

from diffuser_core.tasks.maze2d.point_mass import PointMass
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
    """Planar point mass (Maze2D): state (x, y, vx, vy) from odometry, goal (x, y) at rest, force commands."""

    observation_dim = 4
    command_dim = 2

    def __init__(self, frame_id: str = "map", maze: str = "", command_limit: float = 1.0):
        self.frame_id = frame_id
        self.robot = PointMass(maze, command_limit)

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
        grid = self.robot.grid
        if grid is not None and not grid.is_free(xy):
            return GoalCheck(None, f"goal ({xy[0]:.2f}, {xy[1]:.2f}) is outside the map or inside a wall")
        return GoalCheck(np.array([xy[0], xy[1], 0.0, 0.0]))


ADAPTERS = {"point_mass": PointMassAdapter}
