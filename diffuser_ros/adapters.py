"""A robot for the planner node, described by parameters: its model in the core (tracking rule,
hold, limits, reading of a map), which message fields make its state and carry its command
(diffuser_ros.robot_messages), and which state fields a goal pose fixes.

    robot: diff_drive                 # the core's model: point_mass | diff_drive
    state_message: odometry           # odometry (nav_msgs/Odometry) | joint_state (sensor_msgs/JointState)
    state_fields: [x, y, velocity_x, velocity_y, cos_yaw, sin_yaw]
    command_message: twist            # twist (cmd_vel) | accel (cmd_accel) | joint_trajectory
    command_fields: [linear_x, angular_z]
    goal_fields: [x, y, velocity_x, velocity_y]   # a goal fixes these (velocities at rest); the rest is free
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from geometry_msgs.msg import PoseStamped

from diffuser_core.tasks.diffdrive.robot import DiffDrive
from diffuser_core.tasks.maze2d.point_mass import PointMass
from diffuser_ros.conversions import is_finite_pose
from diffuser_ros.robot_messages import CommandMapping, MappingError, StateMapping, quaternion_yaw

def _one_or_each(limits: np.ndarray):
    """A single limit when every command value has the same one (the point mass's command_limit)."""
    return float(limits[0]) if np.all(limits == limits[0]) else limits


ROBOT_MODELS: dict[str, Callable] = {
    "point_mass": lambda layout, limits: PointMass(layout, _one_or_each(limits)),
    "diff_drive": lambda layout, limits: DiffDrive(layout, *limits),
}
LIMIT_SETTERS: dict[str, Callable] = {
    "point_mass": lambda robot, limits: setattr(robot, "command_limit", _one_or_each(limits)),
    "diff_drive": lambda robot, limits: robot.__dict__.update(v_max=float(limits[0]), w_max=float(limits[1])),
}
# How a goal pose sets a state field it fixes; a field not named here (a velocity) is at rest.
GOAL_POSE_FIELDS = {
    "x": lambda pose: pose.pose.position.x,
    "y": lambda pose: pose.pose.position.y,
    "z": lambda pose: pose.pose.position.z,
    "yaw": lambda pose: quaternion_yaw(pose.pose.orientation),
    "cos_yaw": lambda pose: math.cos(quaternion_yaw(pose.pose.orientation)),
    "sin_yaw": lambda pose: math.sin(quaternion_yaw(pose.pose.orientation)),
}


@dataclass
class GoalCheck:
    """The planner's view of a requested goal: the goal state, or why it was refused."""

    goal: np.ndarray | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.goal is not None


class RobotAdapter:
    """Reads the robot's state message into the planner's state, a goal pose into the goal state
    (with the dims it fixes), and writes the core's command into the robot's command message."""

    def __init__(self, robot: str, state: StateMapping, command: CommandMapping, goal_fields,
                 frame_id: str = "map", layout: str = "", limits=(1.0,)):
        if robot not in ROBOT_MODELS:
            raise MappingError(f"robot='{robot}' is not one of {sorted(ROBOT_MODELS)} (or 'kuka_arm', the arm planner)")
        self.state_mapping, self.command_mapping, self.frame_id = state, command, frame_id
        self.goal_dims = self.goal_indices(goal_fields)
        self.robot, self.set_robot_limits = ROBOT_MODELS[robot](layout, self.limits_vector(limits)), LIMIT_SETTERS[robot]
        if self.robot.command_dim != command.dim:
            raise MappingError(f"robot '{robot}' sends {self.robot.command_dim} command values, "
                               f"command_fields names {command.dim}")

    @property
    def observation_dim(self) -> int:
        return len(self.state_mapping.fields)

    @property
    def command_dim(self) -> int:
        return self.command_mapping.dim

    def goal_indices(self, goal_fields) -> tuple[int, ...] | None:
        """The state indices a goal fixes (None: all of them); MappingError for a field not in the state."""
        fields = self.state_mapping.fields
        unknown = [field for field in goal_fields if field not in fields]
        if unknown or not goal_fields:
            raise MappingError(f"goal_fields {list(goal_fields)} must be some of state_fields {list(fields)}")
        dims = tuple(sorted(fields.index(field) for field in goal_fields))
        return None if len(dims) == len(fields) else dims

    def limits_vector(self, limits) -> np.ndarray:
        """One limit per command value (a single one for every value)."""
        limits = np.asarray(limits, dtype=np.float64).reshape(-1)
        if len(limits) == 1:
            limits = np.full(self.command_mapping.dim, limits[0])
        if len(limits) != self.command_mapping.dim or not np.all(limits > 0):
            raise MappingError(f"command limits {limits.tolist()} must be one positive value or one per "
                               f"command field {list(self.command_mapping.fields)}")
        return limits

    def set_limits(self, limits) -> None:
        """New command limits from the next command on."""
        self.set_robot_limits(self.robot, self.limits_vector(limits))

    def read_state(self, message) -> np.ndarray:
        """The state vector; ValueError naming a field that is missing or not finite."""
        return self.state_mapping.read(message)

    def command_message(self, command: np.ndarray, header):
        """The robot's command message carrying `command`."""
        return self.command_mapping.message(command, header)

    def check_goal(self, message: PoseStamped) -> GoalCheck:
        """The goal state (the fields a goal fixes set from the pose, velocities at rest), or the
        reason the pose cannot be a goal."""
        if not is_finite_pose(message):
            return GoalCheck(None, "goal pose has non-finite values")
        frame = message.header.frame_id
        if frame and frame.lstrip("/") != self.frame_id:
            return GoalCheck(None, f"goal is in frame '{frame}', the planner works in '{self.frame_id}'")
        xy = np.array([message.pose.position.x, message.pose.position.y])
        grid = getattr(self.robot, "grid", None)
        if grid is not None and not grid.is_free(xy):
            return GoalCheck(None, f"goal ({xy[0]:.2f}, {xy[1]:.2f}) is outside the map or inside a wall")
        goal = np.zeros(self.observation_dim)
        dims = range(self.observation_dim) if self.goal_dims is None else self.goal_dims
        for index in dims:
            setter = GOAL_POSE_FIELDS.get(self.state_mapping.fields[index])
            goal[index] = setter(message) if setter is not None else 0.0
        return GoalCheck(goal)
