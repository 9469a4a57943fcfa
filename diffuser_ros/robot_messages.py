"""A robot described by parameters: which fields of its state message make the planner's state
vector, and which fields of its command message carry the planner's command vector.

State from `nav_msgs/Odometry` (pose and twist: `x y z yaw cos_yaw sin_yaw linear_x linear_y
angular_z velocity_x velocity_y`, the last two the twist turned into the pose's frame) or
`sensor_msgs/JointState` (`position:<joint>`, `velocity:<joint>`); commands to
`geometry_msgs/AccelStamped` (`accel`), `geometry_msgs/Twist` (`twist`, as `cmd_vel`) or
`trajectory_msgs/JointTrajectory` (`joint_trajectory`: one point of named joint positions).
Fields are read by attribute only, so the same mapping reads rclpy messages and messages read back
from a recording (rosbags, mcap-ros2-support).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

Reader = Callable[[Any], float]


def quaternion_yaw(q) -> float:
    """Heading (rad) about z of a geometry_msgs Quaternion."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def yaw_of(message) -> float:
    """Heading (rad) of an Odometry's pose."""
    return quaternion_yaw(message.pose.pose.orientation)


def _turned(message, axis: int) -> float:
    """The twist's linear velocity turned from the child frame into the pose's frame (planar)."""
    yaw, linear = yaw_of(message), message.twist.twist.linear
    cos, sin = math.cos(yaw), math.sin(yaw)
    return cos * linear.x - sin * linear.y if axis == 0 else sin * linear.x + cos * linear.y


ODOMETRY_FIELDS: dict[str, Reader] = {
    "x": lambda m: m.pose.pose.position.x,
    "y": lambda m: m.pose.pose.position.y,
    "z": lambda m: m.pose.pose.position.z,
    "yaw": yaw_of,
    "cos_yaw": lambda m: math.cos(yaw_of(m)),
    "sin_yaw": lambda m: math.sin(yaw_of(m)),
    "linear_x": lambda m: m.twist.twist.linear.x,
    "linear_y": lambda m: m.twist.twist.linear.y,
    "angular_z": lambda m: m.twist.twist.angular.z,
    "velocity_x": lambda m: _turned(m, 0),
    "velocity_y": lambda m: _turned(m, 1),
}
VECTOR_FIELDS = {"linear_x": ("linear", "x"), "linear_y": ("linear", "y"), "linear_z": ("linear", "z"),
                 "angular_x": ("angular", "x"), "angular_y": ("angular", "y"), "angular_z": ("angular", "z")}
STATE_KINDS = {"odometry": ("nav_msgs/msg/Odometry", "odom"), "joint_state": ("sensor_msgs/msg/JointState", "joint_states")}
COMMAND_KINDS = {"accel": ("geometry_msgs/msg/AccelStamped", "cmd_accel"), "twist": ("geometry_msgs/msg/Twist", "cmd_vel"),
                 "joint_trajectory": ("trajectory_msgs/msg/JointTrajectory", "joint_trajectory")}


class MappingError(ValueError):
    """A state or command mapping that names an unknown message kind or field."""


def _joint_reader(field: str) -> Reader:
    """`position:<joint>` or `velocity:<joint>` of a JointState, by the joint's name."""
    quantity, _, joint = field.partition(":")
    if quantity not in ("position", "velocity") or not joint:
        raise MappingError(f"joint_state field '{field}' must be position:<joint> or velocity:<joint>")

    def read(message) -> float:
        names = list(message.name)
        if joint not in names:
            raise ValueError(f"joint '{joint}' is not in the JointState (has {names})")
        values = list(getattr(message, quantity))
        index = names.index(joint)
        if index >= len(values):
            raise ValueError(f"JointState has no {quantity} for joint '{joint}'")
        return values[index]
    return read


@dataclass(frozen=True)
class StateMapping:
    """Which message kind holds the robot's state and which of its fields, in order, make the state."""

    kind: str
    fields: tuple[str, ...]

    def __post_init__(self):
        if self.kind not in STATE_KINDS:
            raise MappingError(f"state message '{self.kind}' is not one of {sorted(STATE_KINDS)}")
        if not self.fields:
            raise MappingError("state_fields is empty: name the fields that make the state")
        for field in self.fields:
            self.reader(field)

    @property
    def type_name(self) -> str:
        return STATE_KINDS[self.kind][0]

    @property
    def topic(self) -> str:
        return STATE_KINDS[self.kind][1]

    def reader(self, field: str) -> Reader:
        if self.kind == "joint_state":
            return _joint_reader(field)
        if field not in ODOMETRY_FIELDS:
            raise MappingError(f"odometry field '{field}' is not one of {sorted(ODOMETRY_FIELDS)}")
        return ODOMETRY_FIELDS[field]

    def read(self, message) -> np.ndarray:
        """The state vector; ValueError naming the field that is missing or not finite."""
        values = np.array([self.reader(field)(message) for field in self.fields], dtype=np.float64)
        bad = [field for field, value in zip(self.fields, values) if not math.isfinite(value)]
        if bad:
            raise ValueError(f"{self.kind} has non-finite {', '.join(bad)}")
        return values


@dataclass(frozen=True)
class CommandMapping:
    """Which message kind carries the robot's command and which of its fields, in order, hold the
    command vector (joint names for a JointTrajectory)."""

    kind: str
    fields: tuple[str, ...]

    def __post_init__(self):
        if self.kind not in COMMAND_KINDS:
            raise MappingError(f"command message '{self.kind}' is not one of {sorted(COMMAND_KINDS)}")
        if not self.fields:
            raise MappingError("command_fields is empty: name the fields that carry the command")
        if self.kind != "joint_trajectory":
            unknown = [field for field in self.fields if field not in VECTOR_FIELDS]
            if unknown:
                raise MappingError(f"{self.kind} fields {unknown} are not among {sorted(VECTOR_FIELDS)}")

    @property
    def type_name(self) -> str:
        return COMMAND_KINDS[self.kind][0]

    @property
    def topic(self) -> str:
        return COMMAND_KINDS[self.kind][1]

    @property
    def dim(self) -> int:
        return len(self.fields)

    def read(self, message) -> np.ndarray:
        """The command vector a message carries (a JointTrajectory's first point); ValueError when it
        lacks a field or a value is not finite."""
        if self.kind == "joint_trajectory":
            names, points = list(message.joint_names), list(message.points)
            if not points:
                raise ValueError("JointTrajectory has no points")
            missing = [joint for joint in self.fields if joint not in names]
            if missing:
                raise ValueError(f"JointTrajectory lacks joints {missing} (has {names})")
            values = np.array([points[0].positions[names.index(joint)] for joint in self.fields], dtype=np.float64)
        else:
            body = message.accel if self.kind == "accel" else message
            values = np.array([getattr(getattr(body, part), axis)
                               for part, axis in (VECTOR_FIELDS[field] for field in self.fields)], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [field for field, value in zip(self.fields, values) if not math.isfinite(value)]
            raise ValueError(f"{self.kind} command has non-finite {', '.join(bad)} (values {values.tolist()})")
        return values

    def message(self, command: np.ndarray, header=None, dt: float = 0.0):
        """The ROS message carrying `command` (a finite vector of `dim` values)."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.dim,) or not np.all(np.isfinite(command)):
            raise ValueError(f"command must be {self.dim} finite values, got {command.tolist()}")
        if self.kind == "joint_trajectory":
            return self._trajectory(command, header, dt)
        from geometry_msgs.msg import AccelStamped, Twist

        message = AccelStamped() if self.kind == "accel" else Twist()
        body = message.accel if self.kind == "accel" else message
        if self.kind == "accel" and header is not None:
            message.header = header
        for field, value in zip(self.fields, command):
            part, axis = VECTOR_FIELDS[field]
            setattr(getattr(body, part), axis, float(value))
        return message

    def _trajectory(self, command: np.ndarray, header, dt: float):
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        seconds = max(dt, 0.0)
        point = JointTrajectoryPoint(positions=[float(v) for v in command],
                                     time_from_start=Duration(sec=int(seconds), nanosec=int(seconds % 1 * 1e9)))
        message = JointTrajectory(joint_names=list(self.fields), points=[point])
        if header is not None:
            message.header = header
        return message


def header_seconds(message) -> float | None:
    """The message's header stamp in seconds, or None when it has no header or a zero stamp."""
    header = getattr(message, "header", None)
    if header is None:
        return None
    seconds = header.stamp.sec + header.stamp.nanosec * 1e-9
    return seconds if seconds > 0 else None


def message_class(type_name: str):
    """The rclpy message class of a type name such as 'nav_msgs/msg/Odometry'."""
    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)
