"""KUKA iiwa block-stacking world in PyBullet (Diffuser §5.3): an arm, a table and four blocks.

The world state is the paper's 39-D vector (7 joint angles + 4 × block position, quaternion and
attached flag; layout in `kuka_tasks`). Grasping is a suction-style "magic" grasp: a fixed
constraint between the last arm link and a block, as in the reference code. See docs/kuka.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from collections.abc import Mapping, Sequence

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils import bullet_client

from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, BLOCK_SIZE, CONTROL_DT, JOINT_COUNT

ROBOT_URDF = "kuka_iiwa/model.urdf"
TABLE_URDF = "plane.urdf"
BLOCK_URDF = "cube.urdf"  # a 1 m cube, scaled down to BLOCK_SIZE
# The reference code's world (jannerm/diffuser, branch kuka): 0.2 x 0.2 x 0.06 m slabs of 0.068 kg.
REFERENCE_BLOCK_SIZE = (0.2, 0.2, 0.06)
REFERENCE_BLOCK_MASS = 0.068
REFERENCE_START_RING = 0.6  # m: its blocks start this far from the arm's base, all round it
BLOCK_COLORS = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
}
TOOL_LINK = 6  # lbr_iiwa_link_7, the flange
# Tool pointing straight down, its x axis along world -x: the wrist stays untwisted in front of the
# robot and a carried block keeps its world yaw.
TOOL_DOWN_QUAT = (0.0, 1.0, 0.0, 0.0)
# Arm pose at reset: tool ≈ (0.5, 0, 0.30) m, pointing down.
HOME_JOINTS = (0.0, 0.553, 0.0, -1.815, 0.0, 0.773, 0.0)


@dataclass(frozen=True)
class KukaWorldConfig:
    """Physical and timing constants of the block world (SI units, radians). The default is this
    project's world (5 cm cubes gripped within 2 cm); `reference()` is the reference code's."""

    block_mass: float = 0.1
    block_size: tuple[float, float, float] = (BLOCK_SIZE, BLOCK_SIZE, BLOCK_SIZE)  # x, y, z extents
    physics_dt: float = 1.0 / 240.0  # pybullet's default step
    control_substeps: int = 10  # control dt = 10 / 240 s ≈ 41.7 ms (24 Hz), as in the reference
    tool_offset: float = 0.05  # tool point: this far along the flange axis, just past its face
    grasp_distance: float = 0.02  # grip attaches a block whose top centre is this close to the tool
    # (float("inf") with grip=<block name> reproduces the reference's attach-from-anywhere grasp)
    position_gain: float = 0.3
    velocity_gain: float = 1.0
    workspace_radius: tuple[float, float] = (0.5, 0.7)  # block starts: distance from the arm base
    workspace_half_angle_deg: float = 50.0  # block starts: azimuth within ± this of the +x axis
    min_block_separation: float = 0.15  # block starts: centre-to-centre distance at least this
    # how that distance is measured: "euclidean", or "chebyshev" (the larger of |dx|, |dy|: upright
    # blocks' footprints do not overlap, the reference's AABB test)
    separation_norm: str = "euclidean"
    stop_released: bool = False  # zero the velocity of every block not held at each control step (the reference's)
    # block starts on a circle of this radius around the arm's base (0: the sector above), each block's
    # direction a point of the square [-1, 1]^2 scaled onto the circle and redrawn until its footprint
    # clears those placed before it: the reference's load_world
    start_ring: float = 0.0
    tool_collides: bool = False  # the flange collides with the blocks (the reference's); off: only the grip holds them

    def __post_init__(self):
        positive = ("block_mass", "physics_dt", "tool_offset", "grasp_distance",
                    "position_gain", "velocity_gain", "min_block_separation")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"KukaWorldConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.control_substeps < 1:
            raise ValueError(f"control_substeps must be >= 1, got {self.control_substeps}")
        if not math.isclose(self.physics_dt * self.control_substeps, CONTROL_DT):
            raise ValueError(f"the control period physics_dt * control_substeps must be the demonstrations' "
                             f"{CONTROL_DT:.4f} s, got {self.physics_dt * self.control_substeps:.4f} s")
        low, high = self.workspace_radius
        if not 0 < low < high:
            raise ValueError(f"workspace_radius must be (low, high) with 0 < low < high, got {self.workspace_radius}")
        if not 0 < self.workspace_half_angle_deg <= 180:
            raise ValueError(f"workspace_half_angle_deg must be in (0, 180], got {self.workspace_half_angle_deg}")
        if len(self.block_size) != 3 or not all(math.isfinite(size) and size > 0 for size in self.block_size):
            raise ValueError(f"block_size must be three positive extents (x, y, z), got {self.block_size}")
        if self.separation_norm not in ("euclidean", "chebyshev"):
            raise ValueError(f"separation_norm must be 'euclidean' or 'chebyshev', got {self.separation_norm!r}")
        if not (math.isfinite(self.start_ring) and self.start_ring >= 0):
            raise ValueError(f"start_ring must be a radius >= 0 (0: the sector), got {self.start_ring}")
        footprint = (math.hypot(*self.block_size[:2]) if self.separation_norm == "euclidean"
                     else max(self.block_size[:2]))
        if self.min_block_separation < footprint:
            raise ValueError("min_block_separation must keep the blocks' footprints apart so starts never overlap")

    @classmethod
    def reference(cls) -> "KukaWorldConfig":
        """The reference code's world (jannerm/diffuser, branch kuka, gym_stacking/env.py): its slabs, a
        planned grip takes the block wherever it is, released blocks are stopped at every step, the
        blocks start on its 0.6 m ring all round the arm, and the flange collides with them."""
        return replace(cls.reference_sector(), start_ring=REFERENCE_START_RING, tool_collides=True)

    @classmethod
    def reference_sector(cls) -> "KukaWorldConfig":
        """The reference's slabs, grip and stopped blocks, but blocks starting in this project's sector
        in front of the arm and a flange that does not collide: the world this project's first
        "reference world" rows were measured in."""
        return cls(block_mass=REFERENCE_BLOCK_MASS, block_size=REFERENCE_BLOCK_SIZE, grasp_distance=math.inf,
                   min_block_separation=max(REFERENCE_BLOCK_SIZE[:2]), separation_norm="chebyshev",
                   stop_released=True)

    @property
    def rest_height(self) -> float:
        """Height of a block's centre resting on the table."""
        return self.block_size[2] / 2

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per `step()`."""
        return self.physics_dt * self.control_substeps


class KukaBlockWorld:
    """PyBullet KUKA iiwa with four blocks on a table, on its own DIRECT (or GUI) physics client."""

    def __init__(self, gui: bool = False, seed: int | None = None, config: KukaWorldConfig | None = None):
        self.config = config or KukaWorldConfig()
        self._closed = False
        self._rng = np.random.default_rng(seed)
        self._sim = _connect(pybullet.GUI if gui else pybullet.DIRECT)
        self._kinematics = _connect(pybullet.DIRECT)  # a lone arm for IK, so IK never moves the sim
        self._ik_robot = self._kinematics.loadURDF(ROBOT_URDF, useFixedBase=True)
        self._lower, self._upper, self._max_forces, self._joint_names = _read_joints(self._kinematics, self._ik_robot)
        self._grip_command: bool | str = False
        self._grasp: tuple[str, int] | None = None  # (block name, constraint id)
        self.reset()

    # ---- construction ------------------------------------------------------------------------
    def _build_scene(self) -> None:
        """Table, arm and blocks in an emptied simulation.

        Rebuilt on every reset: bullet's solver results depend on body and constraint ids and on
        contact caches, so reusing bodies would make an episode depend on the episodes before it.
        """
        self._sim.resetSimulation()
        self._sim.setGravity(0, 0, -9.81)
        self._sim.setTimeStep(self.config.physics_dt)
        self._sim.loadURDF(TABLE_URDF)
        self._robot = self._sim.loadURDF(ROBOT_URDF, useFixedBase=True)
        self._blocks = {name: self._load_block(name) for name in BLOCK_NAMES}

    def _load_block(self, name: str) -> int:
        size, mass = np.asarray(self.config.block_size), self.config.block_mass
        if np.all(size == size[0]):
            body = self._sim.loadURDF(BLOCK_URDF, globalScaling=float(size[0]))
        else:
            body = self._sim.createMultiBody(
                baseMass=mass, baseCollisionShapeIndex=self._sim.createCollisionShape(
                    pybullet.GEOM_BOX, halfExtents=(size / 2).tolist()),
                baseVisualShapeIndex=self._sim.createVisualShape(pybullet.GEOM_BOX, halfExtents=(size / 2).tolist()))
            self._sim.changeDynamics(body, -1, lateralFriction=1.0)  # as cube.urdf's
        inertia = mass * np.array([size[1] ** 2 + size[2] ** 2, size[0] ** 2 + size[2] ** 2,
                                   size[0] ** 2 + size[1] ** 2]) / 12.0  # solid box
        self._sim.changeDynamics(body, -1, mass=mass, localInertiaDiagonal=inertia.tolist())
        self._sim.changeVisualShape(body, -1, rgbaColor=BLOCK_COLORS[name])
        if not self.config.tool_collides:  # the grip alone holds a block: it is fixed to the tool by a constraint
            self._sim.setCollisionFilterPair(self._robot, body, TOOL_LINK, -1, enableCollision=0)
        return body

    # ---- read-only properties ----------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The iiwa's seven revolute joint names, as in the URDF."""
        return self._joint_names

    @property
    def block_names(self) -> tuple[str, ...]:
        """Block names in state order."""
        return BLOCK_NAMES

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint position limits from the URDF, radians."""
        return self._lower.copy(), self._upper.copy()

    @property
    def attached_block(self) -> str | None:
        """Name of the block held by the tool, if any."""
        return self._grasp[0] if self._grasp else None

    # ---- episode control ---------------------------------------------------------------------
    def reset(self, seed: int | None = None,
              block_positions: Mapping[str, Sequence[float]] | np.ndarray | None = None) -> np.ndarray:
        """Arm to the home pose, nothing held, blocks upright at random (or given) positions; returns the state.

        `block_positions` maps block name -> (x, y) or (x, y, z) of the block centre (z defaults to
        resting on the table), or is a (4, 2|3) array in `block_names` order.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._grasp, self._grip_command = None, False
        self._build_scene()
        positions = (self._sample_block_positions() if block_positions is None
                     else self._parse_block_positions(block_positions))
        for name, position in positions.items():
            self._sim.resetBasePositionAndOrientation(self._blocks[name], position, (0, 0, 0, 1))
            self._sim.resetBaseVelocity(self._blocks[name], (0, 0, 0), (0, 0, 0))
        for index, angle in enumerate(HOME_JOINTS):
            self._sim.resetJointState(self._robot, index, angle, 0.0)
        self._command_joints(np.asarray(HOME_JOINTS))
        return self.state()

    def show(self, joints: Sequence[float], block_poses: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        """Put the arm and the blocks where they are in another world (a ROS simulator, a real
        arm's readings) without stepping physics, e.g. to draw that scene with `render`."""
        for index, angle in enumerate(joints):
            self._sim.resetJointState(self._robot, index, float(angle), 0.0)
        for name, (position, quat) in block_poses.items():
            self._sim.resetBasePositionAndOrientation(self._blocks[name], list(position), list(quat))

    def render(self, width: int = 480, height: int = 360, yaw: float = 50.0, pitch: float = -25.0) -> np.ndarray:
        """An RGB picture (height, width, 3) of the scene from a camera looking at the workspace.
        pybullet's CPU renderer: works headless, in DIRECT mode."""
        view = self._sim.computeViewMatrixFromYawPitchRoll(cameraTargetPosition=(0.35, 0.0, 0.3), distance=1.3,
                                                           yaw=yaw, pitch=pitch, roll=0.0, upAxisIndex=2)
        projection = self._sim.computeProjectionMatrixFOV(fov=50.0, aspect=width / height, nearVal=0.05, farVal=5.0)
        _, _, rgba, _, _ = self._sim.getCameraImage(width, height, view, projection,
                                                    renderer=pybullet.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3]

    def _sample_block_positions(self) -> dict[str, np.ndarray]:
        cfg = self.config
        if cfg.start_ring > 0:
            return self._sample_ring_positions()
        half_angle = np.radians(cfg.workspace_half_angle_deg)
        for _ in range(1000):
            radius = self._rng.uniform(*cfg.workspace_radius, size=len(BLOCK_NAMES))
            azimuth = self._rng.uniform(-half_angle, half_angle, size=len(BLOCK_NAMES))
            xy = np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth)], axis=1)
            offsets = np.abs(xy[:, None] - xy[None])
            gaps = (np.linalg.norm(offsets, axis=-1) if cfg.separation_norm == "euclidean" else offsets.max(-1))
            gaps = gaps + np.eye(len(xy)) * 1e9
            if gaps.min() >= cfg.min_block_separation:
                z = np.full((len(xy), 1), cfg.rest_height)
                return dict(zip(BLOCK_NAMES, np.hstack([xy, z])))
        raise RuntimeError("could not place the blocks apart: the workspace is too small for min_block_separation")

    def _sample_ring_positions(self) -> dict[str, np.ndarray]:
        """Blocks on the start ring, placed in turn as the reference places them: a direction drawn
        in the square [-1, 1]^2, scaled onto the ring, drawn again while the footprint (the block's
        axis-aligned box) overlaps one placed before."""
        cfg, placed = self.config, []
        for _ in BLOCK_NAMES:
            for _ in range(10000):
                point = self._rng.uniform(-1.0, 1.0, size=2)
                xy = point / np.linalg.norm(point) * cfg.start_ring
                if all(np.any(np.abs(xy - other) >= np.asarray(cfg.block_size[:2])) for other in placed):
                    placed.append(xy)
                    break
            else:
                raise RuntimeError("could not place the blocks apart on the start ring")
        return {name: np.array([*xy, cfg.rest_height]) for name, xy in zip(BLOCK_NAMES, placed)}

    def _parse_block_positions(self, block_positions) -> dict[str, np.ndarray]:
        if not isinstance(block_positions, Mapping):
            array = np.asarray(block_positions, dtype=float)
            if array.ndim != 2 or array.shape[0] != len(BLOCK_NAMES):
                raise ValueError(f"block_positions array must have shape (4, 2) or (4, 3), got {array.shape}")
            block_positions = dict(zip(BLOCK_NAMES, array))
        if set(block_positions) != set(BLOCK_NAMES):
            raise ValueError(f"block_positions must name exactly the blocks {BLOCK_NAMES}, "
                             f"got {sorted(block_positions)}")
        parsed = {}
        for name, position in block_positions.items():
            position = np.asarray(position, dtype=float)
            if position.shape == (2,):
                position = np.append(position, self.config.rest_height)
            if position.shape != (3,) or not np.all(np.isfinite(position)):
                raise ValueError(f"position of block {name!r} must be finite (x, y) or (x, y, z), got {position}")
            parsed[name] = position
        return parsed

    # ---- observation -------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Current joint angles (7,), radians."""
        return np.array([s[0] for s in self._sim.getJointStates(self._robot, list(range(JOINT_COUNT)))])

    def block_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Block name -> (centre position (3,), orientation quaternion (4,) as pybullet's x, y, z, w)."""
        poses = {}
        for name, body in self._blocks.items():
            position, quat = self._sim.getBasePositionAndOrientation(body)
            poses[name] = (np.array(position), np.array(quat))
        return poses

    def state(self) -> np.ndarray:
        """The 39-D state: joints (7) then, per block, position (3), quaternion xyzw (4), attached (1)."""
        parts = [self.joint_positions()]
        for name, (position, quat) in self.block_poses().items():
            parts += [position, quat, [float(name == self.attached_block)]]
        return np.concatenate(parts)

    def tool_pose(self, joints: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Tool point position and orientation (xyzw) in the world; at `joints` if given (forward kinematics)."""
        if joints is None:
            return _tool_pose(self._sim, self._robot, self.config.tool_offset)
        self._set_ik_joints(joints)
        return _tool_pose(self._kinematics, self._ik_robot, self.config.tool_offset)

    # ---- action ------------------------------------------------------------------------------
    def set_joint_targets(self, joints: Sequence[float], grip: bool | str | None = None) -> None:
        """Command joint position targets (clipped to the limits) and the grip.

        grip: True holds the nearest block in reach, a block name holds only that block, False
        releases, None keeps the last command. The grip acts at every `step` while commanded.
        """
        joints = np.asarray(joints, dtype=float)
        if joints.shape != (JOINT_COUNT,) or not np.all(np.isfinite(joints)):
            raise ValueError(f"joint targets must be {JOINT_COUNT} finite angles, got {joints}")
        if isinstance(grip, str) and grip not in BLOCK_NAMES:
            raise ValueError(f"grip names an unknown block {grip!r}; blocks are {BLOCK_NAMES}")
        self._command_joints(np.clip(joints, self._lower, self._upper))
        if grip is not None:
            self._grip_command = grip if isinstance(grip, str) else bool(grip)

    def step(self, n: int = 1) -> np.ndarray:
        """Advance n control steps (each `control_substeps` physics steps), applying the grip; returns the state."""
        if n < 1:
            raise ValueError(f"step count must be >= 1, got {n}")
        for _ in range(n):
            self._apply_grip()
            if self.config.stop_released:
                self._stop_released_blocks()
            for _ in range(self.config.control_substeps):
                self._sim.stepSimulation()
        return self.state()

    def _command_joints(self, joints: np.ndarray) -> None:
        self._sim.setJointMotorControlArray(
            self._robot, list(range(JOINT_COUNT)), pybullet.POSITION_CONTROL,
            targetPositions=joints.tolist(), forces=self._max_forces.tolist(),
            positionGains=[self.config.position_gain] * JOINT_COUNT,
            velocityGains=[self.config.velocity_gain] * JOINT_COUNT)

    # ---- grasp -------------------------------------------------------------------------------
    def _apply_grip(self) -> None:
        wanted = self._grip_command
        if wanted is False or (isinstance(wanted, str) and self.attached_block not in (None, wanted)):
            self._release()
        if wanted is not False and self._grasp is None:
            candidates = BLOCK_NAMES if wanted is True else (wanted,)
            block = self._block_in_reach(candidates)
            if block is not None:
                self._attach(block)

    def _block_in_reach(self, candidates: Sequence[str]) -> str | None:
        """The candidate whose top-face centre is nearest the tool point, if within grasp_distance."""
        tool_position, _ = self.tool_pose()
        poses = self.block_poses()
        distances = {name: np.linalg.norm(poses[name][0] + (0, 0, self.config.rest_height) - tool_position)
                     for name in candidates}
        name = min(distances, key=distances.get)
        return name if distances[name] <= self.config.grasp_distance else None

    def _attach(self, name: str) -> None:
        """Fix the block to the flange at their current relative pose (no snapping)."""
        body = self._blocks[name]
        link_state = self._sim.getLinkState(self._robot, TOOL_LINK, computeForwardKinematics=True)
        com_position, com_quat = link_state[0], link_state[1]  # constraint frames are relative to the COM
        block_position, block_quat = self._sim.getBasePositionAndOrientation(body)
        inv_position, inv_quat = self._sim.invertTransform(com_position, com_quat)
        rel_position, rel_quat = self._sim.multiplyTransforms(inv_position, inv_quat, block_position, block_quat)
        constraint = self._sim.createConstraint(
            self._robot, TOOL_LINK, body, -1, pybullet.JOINT_FIXED, (0, 0, 0),
            parentFramePosition=rel_position, childFramePosition=(0, 0, 0),
            parentFrameOrientation=rel_quat, childFrameOrientation=(0, 0, 0, 1))
        self._sim.changeConstraint(constraint, maxForce=1000)
        self._grasp = (name, constraint)

    def _stop_released_blocks(self) -> None:
        """Zero the velocity of every block the tool does not hold, as the reference's step does."""
        for name, body in self._blocks.items():
            if name != self.attached_block:
                self._sim.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0))

    def _release(self) -> None:
        if self._grasp is not None:
            self._sim.removeConstraint(self._grasp[1])
            self._grasp = None

    # ---- inverse kinematics ------------------------------------------------------------------
    def ik(self, target_pos: Sequence[float], target_quat: Sequence[float] = TOOL_DOWN_QUAT,
           seed: Sequence[float] | None = None, tolerance: float = 1e-4, max_rounds: int = 20) -> np.ndarray:
        """Joint angles putting the tool point at target_pos with orientation target_quat (xyzw).

        Repeats pybullet's damped-least-squares IK from `seed` (default: the current joints) on a
        separate kinematic copy of the arm, clipping to the URDF limits, until the position error
        is below `tolerance` m. The best solution is returned even if it is not reached (check with
        `tool_pose(joints)`).
        """
        target_pos = np.asarray(target_pos, dtype=float)
        if target_pos.shape != (3,) or len(target_quat) != 4:
            raise ValueError("ik needs a 3-D target position and an xyzw quaternion")
        rotation = np.array(pybullet.getMatrixFromQuaternion(target_quat)).reshape(3, 3)
        flange_target = target_pos - rotation @ (0.0, 0.0, self.config.tool_offset)
        joints = self.joint_positions() if seed is None else np.asarray(seed, dtype=float)
        best, best_error = joints, np.inf
        for _ in range(max_rounds):
            self._set_ik_joints(joints)
            joints = np.clip(self._kinematics.calculateInverseKinematics(
                self._ik_robot, TOOL_LINK, flange_target.tolist(), list(target_quat),
                maxNumIterations=50, residualThreshold=1e-6), self._lower, self._upper)
            self._set_ik_joints(joints)
            reached, _ = _tool_pose(self._kinematics, self._ik_robot, self.config.tool_offset)
            error = np.linalg.norm(reached - target_pos)
            if error < best_error:
                best, best_error = joints, error
            if error < tolerance:
                break
        return np.asarray(best)

    def _set_ik_joints(self, joints: Sequence[float]) -> None:
        for index, angle in enumerate(joints):
            self._kinematics.resetJointState(self._ik_robot, index, float(angle))

    # ---- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect both physics clients (idempotent)."""
        if not self._closed:
            self._sim.disconnect()
            self._kinematics.disconnect()
            self._closed = True

    def __enter__(self) -> "KukaBlockWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(mode: int) -> bullet_client.BulletClient:
    client = bullet_client.BulletClient(connection_mode=mode)
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    return client


def _read_joints(client, robot: int):
    """Lower and upper limits, effort limits and names of the arm's revolute joints."""
    infos = [client.getJointInfo(robot, index) for index in range(client.getNumJoints(robot))]
    revolute = [info for info in infos if info[2] == pybullet.JOINT_REVOLUTE]
    if len(revolute) != JOINT_COUNT:
        raise RuntimeError(f"{ROBOT_URDF} should have {JOINT_COUNT} revolute joints, found {len(revolute)}")
    lower = np.array([info[8] for info in revolute])
    upper = np.array([info[9] for info in revolute])
    forces = np.array([info[10] for info in revolute])
    names = tuple(info[1].decode() for info in revolute)
    return lower, upper, forces, names


def _tool_pose(client, robot: int, tool_offset: float) -> tuple[np.ndarray, np.ndarray]:
    link_state = client.getLinkState(robot, TOOL_LINK, computeForwardKinematics=True)
    position, quat = np.array(link_state[4]), np.array(link_state[5])  # URDF link frame
    rotation = np.array(pybullet.getMatrixFromQuaternion(quat)).reshape(3, 3)
    return position + rotation @ (0.0, 0.0, tool_offset), quat
