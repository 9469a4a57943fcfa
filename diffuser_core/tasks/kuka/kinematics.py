"""Forward kinematics of the KUKA iiwa in torch: where planned joint angles put the tool point.

Read from the same URDF the pybullet world loads (urdf.simulated_arm_urdf, base fixed at the world
origin), so test-time guides can score planned joints in metres and differentiate
through them. Matches `KukaBlockWorld.tool_pose` (tested).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .tasks import JOINT_COUNT
from .urdf import arm_joints, load_urdf

TOOL_OFFSET = 0.05  # KukaWorldConfig.tool_offset: the tool point lies this far along the flange axis


def joint_origins(source: str | Path | None = None) -> np.ndarray:
    """(7, 4, 4) parent-to-joint transforms of the arm's joints, base first; every axis must be z."""
    joints = arm_joints(load_urdf(source), JOINT_COUNT)
    for joint in joints:
        if joint.type != "revolute" or joint.axis.tolist() != [0.0, 0.0, 1.0]:
            raise ValueError(f"joint {joint.name} is {joint.type} about {joint.axis.tolist()}; "
                             "this model expects revolute z axes")
    return np.stack([joint.origin for joint in joints])


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

