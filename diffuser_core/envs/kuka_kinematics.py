"""Forward kinematics of the KUKA iiwa in torch: where planned joint angles put the tool point.

Read from the same URDF the pybullet world loads (`pybullet_data` kuka_iiwa/model.urdf, base fixed
at the world origin), so test-time guides can score planned joints in metres and differentiate
through them. Matches `KukaBlockWorld.tool_pose` (tested).
"""
from __future__ import annotations

import functools
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import torch

from .kuka_tasks import JOINT_COUNT

TOOL_OFFSET = 0.05  # KukaWorldConfig.tool_offset: the tool point lies this far along the flange axis


def urdf_path() -> Path:
    """The arm model the world loads."""
    import pybullet_data  # data files only; no simulator is started

    return Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def joint_origins(path: str | Path | None = None) -> np.ndarray:
    """(7, 4, 4) parent-to-joint transforms of the revolute joints, base first; every axis must be z."""
    origins = []
    for joint in ElementTree.parse(path or urdf_path()).getroot().iter("joint"):
        if joint.get("type") != "revolute":
            continue
        axis = [float(v) for v in joint.find("axis").get("xyz").split()]
        if axis != [0.0, 0.0, 1.0]:
            raise ValueError(f"joint {joint.get('name')} turns about {axis}; this model expects z axes")
        origin = joint.find("origin")
        transform = np.eye(4)
        transform[:3, :3] = rpy_matrix(*(float(v) for v in origin.get("rpy", "0 0 0").split()))
        transform[:3, 3] = [float(v) for v in origin.get("xyz", "0 0 0").split()]
        origins.append(transform)
    if len(origins) != JOINT_COUNT:
        raise ValueError(f"expected {JOINT_COUNT} revolute joints, found {len(origins)}")
    return np.stack(origins)


class ArmKinematics:
    """tool_positions(joints): differentiable forward kinematics of the 7-joint chain."""

    def __init__(self, path: str | Path | None = None, tool_offset: float = TOOL_OFFSET):
        self.origins = torch.from_numpy(joint_origins(path)).float()
        self.tool_offset = float(tool_offset)

    def tool_positions(self, joints: torch.Tensor) -> torch.Tensor:
        """(..., 3) tool point in the world for (..., 7) joint angles (radians)."""
        return self.tool_frames(joints)[0]

    def tool_frames(self, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 3) tool point and (..., 3, 3) flange orientation in the world for (..., 7) joint angles
        (radians); the orientation's last column is the way the tool points."""
        if joints.shape[-1] != JOINT_COUNT:
            raise ValueError(f"expected (..., {JOINT_COUNT}) joint angles, got {tuple(joints.shape)}")
        origins = self.origins.to(joints)
        cos, sin = joints.cos(), joints.sin()
        rotation = torch.eye(3, dtype=joints.dtype, device=joints.device).expand(*joints.shape[:-1], 3, 3)
        position = torch.zeros(*joints.shape[:-1], 3, dtype=joints.dtype, device=joints.device)
        for i in range(JOINT_COUNT):
            position = position + rotation @ origins[i, :3, 3]
            rotation = rotation @ origins[i, :3, :3]
            c, s = cos[..., i, None, None], sin[..., i, None, None]  # rotate about the joint's z axis
            rotation = torch.cat([rotation[..., :1] * c + rotation[..., 1:2] * s,
                                  -rotation[..., :1] * s + rotation[..., 1:2] * c,
                                  rotation[..., 2:]], dim=-1)
        return position + rotation[..., 2] * self.tool_offset, rotation


@functools.lru_cache(maxsize=1)
def iiwa_kinematics() -> ArmKinematics:
    """The world's arm, parsed once: guides are built for every plan and share it (it holds no state
    that tool_positions changes)."""
    return ArmKinematics()

