"""The arm's joints from a URDF, with no simulator: names, limits, axes and origins in file order.

A real arm's planner gets its URDF from ROS (`robot_description`) or a file; the simulated iiwa's
is the one pybullet's data files hold. Only the joint table is read (the standard library's XML
parser suffices; PyPI's urdf_parser_py is a 2017 snapshot and yourdfpy pulls in mesh libraries).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MOVING_TYPES = ("revolute", "continuous", "prismatic")
SIMULATED_ARM = ("kuka_iiwa", "model.urdf")  # under pybullet_data: the arm kuka_sim loads


class URDFError(ValueError):
    """A robot description that cannot be read or lacks what the planner needs."""


@dataclass(frozen=True)
class Joint:
    """One URDF joint: type, its parent-to-joint transform (4, 4), axis and limits (±inf if none)."""

    name: str
    type: str
    origin: np.ndarray
    axis: np.ndarray
    lower: float
    upper: float
    effort: float
    velocity: float


def simulated_arm_urdf() -> Path:
    """The iiwa model the simulator loads (pybullet's data files; no simulator is started)."""
    try:
        import pybullet_data
    except ImportError as error:
        raise URDFError("no robot description given and pybullet's iiwa model is not installed: pass the "
                        "arm's URDF (robot_description or urdf_path)") from error
    return Path(pybullet_data.getDataPath()).joinpath(*SIMULATED_ARM)


def load_urdf(source: str | Path | None = None) -> str:
    """URDF text from XML (a string starting with '<'), a file path, or None (the simulated iiwa)."""
    if source is None or source == "":
        source = simulated_arm_urdf()
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source
    path = Path(source)
    if not path.is_file():
        raise URDFError(f"no URDF file at {path}")
    return path.read_text()


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def parse_joints(urdf: str) -> list[Joint]:
    """Every joint of a URDF document, in file order."""
    try:
        root = ElementTree.fromstring(urdf)
    except ElementTree.ParseError as error:
        raise URDFError(f"robot description is not valid XML: {error}") from error
    if root.tag != "robot":
        raise URDFError(f"robot description's root element is <{root.tag}>, not <robot>")
    return [_joint(element) for element in root.iter("joint")]


def arm_joints(urdf: str, count: int) -> list[Joint]:
    """The `count` moving joints of an arm (file order); URDFError when it has another number."""
    moving = [joint for joint in parse_joints(urdf) if joint.type in MOVING_TYPES]
    if len(moving) != count:
        raise URDFError(f"the robot description has {len(moving)} moving joints "
                        f"({[joint.name for joint in moving]}); this planner needs {count}")
    return moving


def joint_limits(joints: list[Joint]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names and (lower, upper) position limits, for clipping commands."""
    return (tuple(joint.name for joint in joints), np.array([joint.lower for joint in joints]),
            np.array([joint.upper for joint in joints]))


def _joint(element) -> Joint:
    name, kind = element.get("name"), element.get("type")
    if not name or not kind:
        raise URDFError("every URDF joint needs a name and a type")
    origin_element, axis_element, limit = element.find("origin"), element.find("axis"), element.find("limit")
    origin = np.eye(4)
    if origin_element is not None:
        origin[:3, :3] = rpy_matrix(*_floats(origin_element.get("rpy", "0 0 0"), 3, name))
        origin[:3, 3] = _floats(origin_element.get("xyz", "0 0 0"), 3, name)
    axis = np.array(_floats(axis_element.get("xyz", "1 0 0"), 3, name) if axis_element is not None else [1.0, 0, 0])
    bounded = kind in ("revolute", "prismatic") and limit is not None
    lower = float(limit.get("lower", 0.0)) if bounded else -math.inf
    upper = float(limit.get("upper", 0.0)) if bounded else math.inf
    if lower > upper:
        raise URDFError(f"joint {name}: lower limit {lower} is above upper limit {upper}")
    effort = float(limit.get("effort", math.inf)) if limit is not None else math.inf
    velocity = float(limit.get("velocity", math.inf)) if limit is not None else math.inf
    return Joint(name, kind, origin, axis, lower, upper, effort, velocity)


def _floats(text: str, count: int, joint: str) -> list[float]:
    try:
        values = [float(value) for value in text.split()]
    except ValueError as error:
        raise URDFError(f"joint {joint}: {text!r} is not {count} numbers") from error
    if len(values) != count:
        raise URDFError(f"joint {joint}: {text!r} is not {count} numbers")
    return values


def arm_joint_limits(source: str | Path | None = None, count: int = 7) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Joint names and limits of an arm's URDF (XML, a path, or None: the simulated iiwa)."""
    return joint_limits(arm_joints(load_urdf(source), count))
