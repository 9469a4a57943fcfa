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


def revolute_z_joints(source: str | Path | None = None) -> list:
    """The arm's 7 joints (urdf.Joint, base first); every one must be revolute about its z axis."""
    joints = arm_joints(load_urdf(source), JOINT_COUNT)
    for joint in joints:
        if joint.type != "revolute" or joint.axis.tolist() != [0.0, 0.0, 1.0]:
            raise ValueError(f"joint {joint.name} is {joint.type} about {joint.axis.tolist()}; "
                             "this model expects revolute z axes")
    return joints


def joint_origins(source: str | Path | None = None) -> np.ndarray:
    """(7, 4, 4) parent-to-joint transforms of the arm's joints, base first; every axis must be z."""
    return np.stack([joint.origin for joint in revolute_z_joints(source)])


class ArmKinematics:
    """tool_positions(joints): differentiable forward kinematics of the 7-joint chain; `lower` and
    `upper`: the joints' position limits (radians)."""

    def __init__(self, path: str | Path | None = None, tool_offset: float = TOOL_OFFSET):
        joints = revolute_z_joints(path)
        origins = torch.from_numpy(np.stack([joint.origin for joint in joints])).float()
        self.lower = torch.tensor([joint.lower for joint in joints], dtype=torch.float32)
        self.upper = torch.tensor([joint.upper for joint in joints], dtype=torch.float32)
        self.tool_offset = float(tool_offset)
        self.translations = origins[:, :3, 3]
        # joint i's origin rotation turned by q about its z axis is linear in (cos q, sin q):
        # O_i Rz(q) = cos_part * cos q + sin_part * sin q + fixed_part
        rotations = origins[:, :3, :3]
        self.cos_part, self.sin_part, self.fixed_part = (torch.zeros_like(rotations) for _ in range(3))
        self.cos_part[..., :2] = rotations[..., :2]
        self.sin_part[..., 0], self.sin_part[..., 1] = rotations[..., 1], -rotations[..., 0]
        self.fixed_part[..., 2] = rotations[..., 2]

    def tool_positions(self, joints: torch.Tensor) -> torch.Tensor:
        """(..., 3) tool point in the world for (..., 7) joint angles (radians)."""
        return self.tool_frames(joints)[0]

    def tool_frames(self, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 3) tool point and (..., 3, 3) flange orientation in the world for (..., 7) joint angles
        (radians); the orientation's last column is the way the tool points. Every joint's turned
        rotation is formed at once, then chained: few, larger tensor operations (guides and the
        refinement differentiate this hundreds of times per plan)."""
        if joints.shape[-1] != JOINT_COUNT:
            raise ValueError(f"expected (..., {JOINT_COUNT}) joint angles, got {tuple(joints.shape)}")
        cos, sin = joints.cos()[..., None, None], joints.sin()[..., None, None]
        turned = (self.cos_part.to(joints) * cos + self.sin_part.to(joints) * sin
                  + self.fixed_part.to(joints))  # (..., 7, 3, 3)
        translations = self.translations.to(joints)
        position = translations[0].expand(*joints.shape[:-1], 3)
        rotation = turned[..., 0, :, :]
        for i in range(1, JOINT_COUNT):
            position = position + (rotation @ translations[i, :, None])[..., 0]
            rotation = rotation @ turned[..., i, :, :]
        return position + rotation[..., 2] * self.tool_offset, rotation


@functools.lru_cache(maxsize=1)
def iiwa_kinematics() -> ArmKinematics:
    """The world's arm, parsed once: guides are built for every plan and share it (it holds no state
    that tool_positions changes)."""
    return ArmKinematics()

