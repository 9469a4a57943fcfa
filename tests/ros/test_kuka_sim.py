"""`kuka_sim` over the real middleware: it publishes joint_states and blocks, follows a
JointTrajectory (any joint order, "gripper" pseudo-joint), and rejects bad ones while staying alive."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from diffuser_core.tasks.kuka.world import HOME_JOINTS, KukaBlockWorld
from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, BLOCK_SIZE
from diffuser_ros.kuka_sim_node import KukaSim, parse_trajectory
from diffuser_ros.msg import Blocks

IIWA_JOINTS = tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))
LOWER = np.array([-2.967, -2.094, -2.967, -2.094, -2.967, -2.094, -3.054])
UPPER = -LOWER


def point(positions, seconds):
    return JointTrajectoryPoint(positions=[float(p) for p in positions],
                                time_from_start=Duration(sec=int(seconds), nanosec=int(seconds % 1 * 1e9)))


def trajectory(names, *points):
    return JointTrajectory(joint_names=list(names), points=list(points))


class Probe:
    """A KukaSim (4× real time) and a listener node, spun together in a background thread."""

    def __init__(self, context):
        self.sim = KukaSim(context=context, parameter_overrides=[
            Parameter("real_time_factor", value=4.0), Parameter("publish_rate", value=50.0)])
        self.node = rclpy.create_node("kuka_probe", context=context)
        self.joint_states, self.blocks = [], []
        self.node.create_subscription(JointState, "joint_states", self.joint_states.append, 10)
        self.node.create_subscription(Blocks, "blocks", self.blocks.append, 10)
        self.commands = self.node.create_publisher(JointTrajectory, "joint_trajectory", 10)
        self.gripper = self.node.create_publisher(JointTrajectory, "gripper_trajectory", 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.sim)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        assert self.wait_for(lambda: self.joint_states and self.blocks), "no joint_states / blocks received"
        assert self.wait_for(lambda: self.commands.get_subscription_count() > 0), "kuka_sim not discovered"
        # The publisher seeing the simulator's subscription does not mean the subscription already takes
        # its messages: a first trajectory was lost once in CI. Handshake with a harmless one (no points:
        # rejected and counted) until the simulator has taken it.
        assert self.wait_for(lambda: self.handshake() > 0), "kuka_sim takes no joint_trajectory"
        time.sleep(0.2)  # let any handshake still in flight arrive before tests count
        self.rejected_before = self.sim.rejected_trajectories

    def handshake(self) -> int:
        self.commands.publish(trajectory(IIWA_JOINTS))
        time.sleep(0.05)
        return self.sim.rejected_trajectories

    @staticmethod
    def wait_for(predicate, timeout_s=8.0):
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(predicate())

    def arm(self) -> np.ndarray:
        """Latest published joint positions, in IIWA_JOINTS order."""
        message = self.joint_states[-1]
        return np.array([message.position[list(message.name).index(name)] for name in IIWA_JOINTS])

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=5)
        self.sim.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def probe(ros_context):
    probe = Probe(ros_context)
    yield probe
    probe.close()


def test_publishes_joint_states_and_blocks(probe):
    joints = probe.joint_states[-1]
    assert tuple(joints.name) == IIWA_JOINTS
    assert len(joints.position) == 7 and len(joints.velocity) == 7
    np.testing.assert_allclose(probe.arm(), HOME_JOINTS, atol=0.02)
    blocks = probe.blocks[-1]
    assert tuple(blocks.names) == BLOCK_NAMES and len(blocks.poses) == 4
    assert blocks.header.frame_id == "world"
    heights = [pose.position.z for pose in blocks.poses]
    np.testing.assert_allclose(heights, BLOCK_SIZE / 2, atol=0.005)  # resting on the table
    assert all(0.4 < np.hypot(p.position.x, p.position.y) < 0.8 for p in blocks.poses)


def test_trajectory_in_any_joint_order_moves_the_arm_there(probe):
    target = np.array(HOME_JOINTS) + [0.4, -0.2, 0.3, 0.25, -0.3, 0.2, 0.5]
    order = [6, 2, 0, 5, 1, 4, 3]  # a permuted joint order, as a controller accepts
    halfway = (np.array(HOME_JOINTS) + target) / 2
    message = trajectory([IIWA_JOINTS[j] for j in order] + ["gripper"],
                         point(list(halfway[order]) + [0.0], 0.4), point(list(target[order]) + [0.0], 0.8))
    probe.commands.publish(message)
    assert probe.wait_for(lambda: np.abs(probe.arm() - target).max() < 0.01), \
        f"arm at {probe.arm().round(3)}, commanded {target.round(3)}"
    assert probe.sim.rejected_trajectories == probe.rejected_before  # only the handshake was rejected
    # Settled at the last point: the published velocities are about zero.
    assert probe.wait_for(lambda: np.abs(probe.joint_states[-1].velocity).max() < 0.02)


def test_new_trajectory_replaces_the_old_one(probe):
    far = np.array(HOME_JOINTS) + 0.6
    near = np.array(HOME_JOINTS) + [0.2, 0.0, 0.0, -0.2, 0.0, 0.0, 0.0]
    probe.commands.publish(trajectory(IIWA_JOINTS, point(far, 30.0)))  # would take 30 s of sim time
    assert probe.wait_for(lambda: probe.sim.trajectory is not None)
    probe.commands.publish(trajectory(IIWA_JOINTS, point(near, 0.3)))
    assert probe.wait_for(lambda: np.abs(probe.arm() - near).max() < 0.01), f"arm at {probe.arm().round(3)}"


def test_bad_trajectories_are_rejected_and_the_node_lives_on(probe):
    home = probe.arm()
    moved = home + 0.3
    bad = [
        trajectory(IIWA_JOINTS[:6] + ("elbow",), point(moved, 0.2)),  # unknown name
        trajectory(IIWA_JOINTS, point([np.nan] + list(moved[1:]), 0.2)),  # NaN position
        trajectory(IIWA_JOINTS[:6], point(moved[:6], 0.2)),  # a missing joint
        trajectory(IIWA_JOINTS, point(list(moved[:6]) + [4.0], 0.2)),  # beyond joint 7's ±3.054 rad
        trajectory(IIWA_JOINTS),  # no points
    ]
    for message in bad:
        probe.commands.publish(message)
        time.sleep(0.05)
    rejected = lambda: probe.sim.rejected_trajectories - probe.rejected_before  # noqa: E731
    assert probe.wait_for(lambda: rejected() == len(bad)), rejected()
    time.sleep(0.3)  # 0.3 s × 4: room to move, had anything been accepted
    np.testing.assert_allclose(probe.arm(), home, atol=2e-3)
    probe.commands.publish(trajectory(IIWA_JOINTS, point(moved, 0.2)))
    assert probe.wait_for(lambda: np.abs(probe.arm() - moved).max() < 0.01), "node stopped following after rejections"


def pick_up_red(probe):
    """Joint targets down to the red block and up again, and the grip at each (IK in a twin world)."""
    with KukaBlockWorld() as twin:  # a second world, for IK only
        red = probe.blocks[-1].poses[0].position
        block = np.array([red.x, red.y, red.z])
        heights = [0.30, 0.20, 0.10, BLOCK_SIZE / 2 + 0.003, BLOCK_SIZE / 2 + 0.003, 0.10, 0.30]
        grips = [0, 0, 0, 0, 1, 1, 1]
        joints, seed = [], HOME_JOINTS
        for height in heights:
            seed = twin.ik(block + (0, 0, height), seed=seed)
            joints.append(seed)
    return joints, grips


def test_gripper_joint_picks_up_a_block(probe):
    joints, grips = pick_up_red(probe)
    points = [point(list(q) + [g], 0.5 * (i + 1)) for i, (q, g) in enumerate(zip(joints, grips))]
    probe.commands.publish(trajectory(IIWA_JOINTS + ("gripper",), *points))
    assert probe.wait_for(lambda: probe.blocks[-1].poses[0].position.z > 0.2), "the red block was not lifted"
    assert probe.sim.world.attached_block == BLOCK_NAMES[0]


def test_a_gripper_trajectory_beside_the_arm_trajectory_picks_up_a_block(probe):
    """The arm's 7 joints on joint_trajectory, the grip on gripper_trajectory, one time base."""
    joints, grips = pick_up_red(probe)
    rejected = probe.sim.rejected_trajectories
    probe.gripper.publish(trajectory(["gripper"], *[point([g], 0.5 * (i + 1)) for i, g in enumerate(grips)]))
    probe.commands.publish(trajectory(IIWA_JOINTS, *[point(list(q), 0.5 * (i + 1)) for i, q in enumerate(joints)]))
    assert probe.wait_for(lambda: probe.blocks[-1].poses[0].position.z > 0.2), "the red block was not lifted"
    assert probe.sim.world.attached_block == BLOCK_NAMES[0] and probe.sim.rejected_trajectories == rejected


@pytest.mark.parametrize("names, positions, message", [
    (["gripper", "lbr_iiwa_joint_1"], [1.0, 0.0], "names the one joint"),
    (["gripper"], [float("nan")], "one finite position"),
])
def test_bad_gripper_trajectories_are_refused(names, positions, message):
    from diffuser_ros.kuka_sim_node import parse_gripper_trajectory

    with pytest.raises(ValueError, match=message):
        parse_gripper_trajectory(trajectory(names, point(positions, 0.5)))


def test_parse_trajectory_maps_gripper_and_interpolates():
    names = list(reversed(IIWA_JOINTS)) + ["gripper"]
    first, second = np.linspace(-0.5, 0.5, 7), np.linspace(0.5, -0.5, 7)
    message = trajectory(names, point(list(first[::-1]) + [1.0], 1.0), point(list(second[::-1]) + [0.0], 2.0))
    parsed = parse_trajectory(message, IIWA_JOINTS, LOWER, UPPER)
    np.testing.assert_allclose(parsed.positions, [first, second])
    assert parsed.grips == (True, False)
    start = np.zeros(7)
    joints, grip = parsed.sample(0.5, start, start_grip=False)
    np.testing.assert_allclose(joints, first / 2)  # halfway from the start to point 0
    assert grip is True  # point 0's grip while moving towards it
    joints, grip = parsed.sample(1.5, start, start_grip=False)
    np.testing.assert_allclose(joints, (first + second) / 2)
    assert grip is False
    joints, _ = parsed.sample(9.0, start, start_grip=False)
    np.testing.assert_allclose(joints, second)  # holds the last point
    without_gripper = parse_trajectory(trajectory(IIWA_JOINTS, point(first, 1.0)), IIWA_JOINTS, LOWER, UPPER)
    assert without_gripper.sample(0.5, start, start_grip=True)[1] is True  # grip unchanged


@pytest.mark.parametrize("message, reason", [
    (trajectory(IIWA_JOINTS + ("lbr_iiwa_joint_1",), point(np.zeros(8), 1.0)), "duplicates"),
    (trajectory(IIWA_JOINTS, point(np.zeros(6), 1.0)), "6 positions for 7"),
    (trajectory(IIWA_JOINTS, point(np.zeros(7), 1.0), point(np.zeros(7), 1.0)), "strictly increasing"),
    (trajectory(IIWA_JOINTS, point([0, 2.5, 0, 0, 0, 0, 0], 1.0)), r"lbr_iiwa_joint_2'\] outside"),
])
def test_parse_trajectory_gives_reasons(message, reason):
    with pytest.raises(ValueError, match=reason):
        parse_trajectory(message, IIWA_JOINTS, LOWER, UPPER)


def test_bad_parameter_is_a_configuration_error():
    result = subprocess.run(
        [sys.executable, "-m", "diffuser_ros.kuka_sim_node", "--ros-args", "-p", "real_time_factor:=-1.0"],
        capture_output=True, text=True, timeout=30, env=os.environ)
    assert result.returncode == 2, result.stderr
    assert "real_time_factor must be a positive number" in result.stderr
