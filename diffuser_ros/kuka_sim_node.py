"""`kuka_sim`: the KUKA iiwa block world (pybullet, DIRECT mode) as a ROS 2 robot.

Steps `KukaBlockWorld` at its control rate (1 / control_dt = 24 Hz of simulated time) ×
`real_time_factor`, publishes `joint_states` (sensor_msgs/JointState: the URDF's 7 joint names,
positions, velocities) and `blocks` (diffuser_ros/Blocks, frame `frame_id`) at `publish_rate` Hz,
and follows `joint_trajectory` (trajectory_msgs/JointTrajectory), as a ros2_control
joint_trajectory_controller would:

- joint_names must name each of the 7 arm joints exactly once, in any order. The suction grip
  (position > 0.5 = grip the block in reach, else release) comes on `gripper_trajectory`, a
  JointTrajectory of the joint "gripper" alone timed from its own arrival, as a gripper controller
  beside the arm's takes it; "gripper" may also ride along in joint_trajectory. Without either the
  grip stays as last commanded.
- A trajectory is rejected whole (logged, the arm keeps its current motion) when it has no
  points, an unknown, duplicate or missing joint name, a point of the wrong length, a non-finite
  position, an arm position outside the URDF limits (rejected, never clipped: a clipped plan is
  not the plan that was sent), or times_from_start that are negative or not strictly increasing.
- An accepted trajectory replaces the current one. Time runs from its arrival, in simulated time
  (header.stamp is ignored); positions are interpolated linearly from the arm's position at
  arrival to the first point, then between points; after the last point the arm holds it.
  Each point's grip applies while the arm moves towards that point (the demonstrations' convention:
  the action at step t is the target q[t+1] with its grip). Point velocities are ignored.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from diffuser_core.tasks.kuka.world import KukaBlockWorld
from diffuser_ros.conversions import seconds_to_stamp
from diffuser_ros.runtime import keep_wall_clock_when_publishing_clock, run_node
from diffuser_ros.msg import Blocks
from diffuser_ros.parameters import Info, declare

GRIPPER_JOINT = "gripper"  # pseudo-joint in JointTrajectory.joint_names: position > 0.5 = grip
GRIP_THRESHOLD = 0.5
MAX_TIMER_HZ = 250.0  # above this, several control steps run per timer tick
PARAMETERS = {"seed": 0, "real_time_factor": 1.0, "frame_id": "world", "publish_rate": 24.0, "publish_clock": False}
# Read once at start-up, so fixed afterwards (read-only); set them with -p or a params file.
PARAMETER_INFO = {
    "seed": Info("seed of the blocks' start positions", read_only=True),
    "real_time_factor": Info("simulated seconds per wall-clock second", read_only=True),
    "frame_id": Info("frame of the blocks' poses (the arm's base at the origin)", read_only=True),
    "publish_rate": Info("Hz (wall clock) of joint_states and blocks", read_only=True),
    "publish_clock": Info("publish simulated time on /clock and stamp messages with it (for use_sim_time)",
                          read_only=True),
}


@dataclass(frozen=True)
class ArmTrajectory:
    """A checked joint trajectory in the world's joint order: point times (s), positions (P, 7), grips."""

    times: np.ndarray
    positions: np.ndarray
    grips: tuple[bool | None, ...]  # None: the message had no gripper joint

    def sample(self, elapsed: float, start: np.ndarray, start_grip: bool) -> tuple[np.ndarray, bool]:
        """Joint targets `elapsed` s after the trajectory began at `start`, and the grip in force then."""
        times = np.concatenate([[0.0], self.times])
        positions = np.vstack([start, self.positions])
        joints = np.array([np.interp(elapsed, times, positions[:, j]) for j in range(positions.shape[1])])
        next_point = min(int(np.searchsorted(self.times, elapsed, side="left")), len(self.times) - 1)
        grip = self.grips[next_point]
        return joints, start_grip if grip is None else grip


def parse_trajectory(message: JointTrajectory, joint_names, lower: np.ndarray, upper: np.ndarray) -> ArmTrajectory:
    """Map a JointTrajectory onto the arm's joint order and check it; raise ValueError with the reason."""
    names = list(message.joint_names)
    if not message.points:
        raise ValueError("the trajectory has no points")
    if len(set(names)) != len(names):
        raise ValueError(f"joint_names has duplicates: {names}")
    unknown = [name for name in names if name not in joint_names and name != GRIPPER_JOINT]
    if unknown:
        raise ValueError(f"unknown joint names {unknown}; the arm has {list(joint_names)} (+ '{GRIPPER_JOINT}')")
    missing = [name for name in joint_names if name not in names]
    if missing:
        raise ValueError(f"joint_names misses the arm joints {missing}")
    arm_columns = [names.index(name) for name in joint_names]
    times, positions, grips = [], [], []
    for index, point in enumerate(message.points):
        values = np.asarray(point.positions, dtype=float)
        if values.shape != (len(names),):
            raise ValueError(f"point {index} has {values.size} positions for {len(names)} joint names")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"point {index} has a non-finite position: {values.tolist()}")
        arm = values[arm_columns]
        outside = [joint_names[j] for j in range(len(arm)) if not lower[j] <= arm[j] <= upper[j]]
        if outside:
            raise ValueError(f"point {index} puts {outside} outside the URDF joint limits")
        times.append(point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
        positions.append(arm)
        grips.append(bool(values[names.index(GRIPPER_JOINT)] > GRIP_THRESHOLD) if GRIPPER_JOINT in names else None)
    times = np.array(times)
    if times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"time_from_start must be >= 0 and strictly increasing, got {times.tolist()}")
    return ArmTrajectory(times, np.array(positions), tuple(grips))


def parse_gripper_trajectory(message: JointTrajectory) -> ArmTrajectory:
    """A JointTrajectory of the gripper joint alone (position > 0.5 grips) as a grip schedule; raise
    ValueError with the reason."""
    if list(message.joint_names) != [GRIPPER_JOINT]:
        raise ValueError(f"a gripper trajectory names the one joint '{GRIPPER_JOINT}', got {list(message.joint_names)}")
    if not message.points:
        raise ValueError("the gripper trajectory has no points")
    times, grips = [], []
    for index, point in enumerate(message.points):
        if len(point.positions) != 1 or not math.isfinite(point.positions[0]):
            raise ValueError(f"gripper point {index} must hold one finite position, got {list(point.positions)}")
        times.append(point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
        grips.append(bool(point.positions[0] > GRIP_THRESHOLD))
    times = np.array(times)
    if times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"time_from_start must be >= 0 and strictly increasing, got {times.tolist()}")
    return ArmTrajectory(times, np.zeros((len(times), 0)), tuple(grips))


class KukaSim(Node):
    """KUKA iiwa block-world simulator node."""

    def __init__(self, **kwargs):
        super().__init__("kuka_sim", **kwargs)
        self.params = self.declare_and_check_parameters()
        keep_wall_clock_when_publishing_clock(self, self.params["publish_clock"])
        self.world = KukaBlockWorld(seed=self.params["seed"])
        self.control_dt = self.world.config.control_dt
        self.sim_steps = 0
        self.rejected_trajectories = 0
        self.trajectory: ArmTrajectory | None = None
        self.trajectory_start_step = 0
        self.trajectory_start_joints = self.world.joint_positions()
        self.grip = False
        self.trajectory_start_grip = False
        self.gripper: ArmTrajectory | None = None  # the newest gripper_trajectory and when it began
        self.gripper_start_step = 0
        self.previous_joints = self.world.joint_positions()
        self.joint_velocities = np.zeros_like(self.previous_joints)

        # Reliable publishers reach both reliable and best-effort (sensor-data) subscribers.
        state_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.joint_state_publisher = self.create_publisher(JointState, "joint_states", state_qos)
        self.blocks_publisher = self.create_publisher(Blocks, "blocks", state_qos)
        # Commands must not be lost; only the newest trajectory matters (a new one replaces the old).
        self.create_subscription(JointTrajectory, "joint_trajectory", self.on_trajectory, QoSProfile(depth=1))
        self.create_subscription(JointTrajectory, "gripper_trajectory", self.on_gripper_trajectory, QoSProfile(depth=1))
        self.clock_publisher = self.create_publisher(Clock, "/clock", 10) if self.params["publish_clock"] else None

        steps_per_second = self.params["real_time_factor"] / self.control_dt
        self.steps_per_tick = max(1, math.ceil(steps_per_second / MAX_TIMER_HZ))
        self.create_timer(self.steps_per_tick / steps_per_second, self.tick)
        self.create_timer(1.0 / self.params["publish_rate"], self.publish_state)
        self.get_logger().info(
            f"kuka block world: {steps_per_second:.1f} control steps/s (dt {self.control_dt * 1e3:.1f} ms, "
            f"real-time factor {self.params['real_time_factor']}), publishing at {self.params['publish_rate']} Hz")

    def declare_and_check_parameters(self) -> dict:
        """Declare every parameter up front; raise ValueError naming the bad one."""
        declare(self, PARAMETERS, PARAMETER_INFO)
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        for name in ("real_time_factor", "publish_rate"):
            if not (isinstance(params[name], (int, float)) and math.isfinite(params[name]) and params[name] > 0):
                raise ValueError(f"parameter {name} must be a positive number, got {params[name]!r}")
        if not isinstance(params["seed"], int) or params["seed"] < 0:
            raise ValueError(f"parameter seed must be a non-negative integer, got {params['seed']!r}")
        if not isinstance(params["frame_id"], str) or not params["frame_id"]:
            raise ValueError(f"parameter frame_id must be a non-empty string, got {params['frame_id']!r}")
        return params

    def on_trajectory(self, message: JointTrajectory) -> None:
        try:
            trajectory = parse_trajectory(message, self.world.joint_names, *self.world.joint_limits)
        except ValueError as reason:
            self.rejected_trajectories += 1
            self.get_logger().warning(f"rejected a joint_trajectory: {reason}; keeping the current motion")
            return
        self.trajectory = trajectory
        self.trajectory_start_step = self.sim_steps
        self.trajectory_start_joints = self.world.joint_positions()
        self.trajectory_start_grip = self.grip

    def on_gripper_trajectory(self, message: JointTrajectory) -> None:
        try:
            self.gripper = parse_gripper_trajectory(message)
        except ValueError as reason:
            self.rejected_trajectories += 1
            self.get_logger().warning(f"rejected a gripper_trajectory: {reason}; keeping the grip")
            return
        self.gripper_start_step = self.sim_steps

    def tick(self) -> None:
        for _ in range(self.steps_per_tick):
            self.control_step()
        if self.clock_publisher is not None:
            self.clock_publisher.publish(Clock(clock=self.sim_time()))

    def control_step(self) -> None:
        """Command the trajectory's target for the end of this step, then advance the world one step."""
        if self.trajectory is not None:
            elapsed = (self.sim_steps - self.trajectory_start_step + 1) * self.control_dt
            joints, self.grip = self.trajectory.sample(elapsed, self.trajectory_start_joints, self.trajectory_start_grip)
            self.grip = self.scheduled_grip(self.grip)
            self.world.set_joint_targets(joints, grip=self.grip)
        elif self.gripper is not None:  # a grip without an arm trajectory: the arm keeps its targets
            self.grip = self.scheduled_grip(self.grip)
            self.world.set_joint_targets(self.trajectory_start_joints, grip=self.grip)
        self.world.step()
        self.sim_steps += 1
        joints = self.world.joint_positions()
        self.joint_velocities = (joints - self.previous_joints) / self.control_dt  # mean over the step
        self.previous_joints = joints

    def scheduled_grip(self, grip: bool) -> bool:
        """The grip the newest gripper_trajectory asks for at the end of this step (else `grip`)."""
        if self.gripper is None:
            return grip
        elapsed = (self.sim_steps - self.gripper_start_step + 1) * self.control_dt
        return self.gripper.sample(elapsed, np.zeros(0), grip)[1]

    def sim_time(self) -> Time:
        """The simulated time: control steps since the start."""
        return seconds_to_stamp(self.sim_steps * self.control_dt)

    def publish_state(self) -> None:
        stamp = self.sim_time() if self.params["publish_clock"] else self.get_clock().now().to_msg()
        header = Header(stamp=stamp, frame_id=self.params["frame_id"])
        self.joint_state_publisher.publish(JointState(
            header=header, name=list(self.world.joint_names),
            position=self.previous_joints.tolist(), velocity=self.joint_velocities.tolist()))
        self.blocks_publisher.publish(self.blocks_message(header))

    def blocks_message(self, header: Header) -> Blocks:
        message = Blocks(header=header)
        for name, (position, quat) in self.world.block_poses().items():
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
            pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in quat)
            message.names.append(name)
            message.poses.append(pose)
        return message

    def destroy_node(self) -> None:
        if hasattr(self, "world"):  # absent when a parameter check failed during construction
            self.world.close()
        super().destroy_node()


def main(argv=None) -> int:
    return run_node(KukaSim, argv, name="kuka_sim")


if __name__ == "__main__":
    sys.exit(main())
