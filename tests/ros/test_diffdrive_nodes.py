"""`diffdrive_sim` and `diffdrive_expert` over the real rclpy: cmd_vel moves the robot along its heading and
odom reports it (pose with its yaw, twist in the body frame), a stale command stops it, a non-finite one is
rejected, the costmap is latched; the expert drives the simulated robot to its goals in simulated time,
announcing each on goal_pose, and says when it is done. Bounds are in simulated time, never wall-clock rates."""
import math
import threading
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Bool

from diffuser_core.tasks.maze2d.grid import MazeGrid
from diffuser_ros.conversions import occupancy_grid_to_map
from diffuser_ros.diffdrive_expert_node import STATE, DiffDriveExpert
from diffuser_ros.diffdrive_sim_node import DiffDriveSim
from diffuser_ros.executors import PooledExecutor

START = [3.0, 3.0, math.pi / 2]  # the room's centre cell, facing +y (cells (3, 4) and (3, 5) are free)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Harness:
    """The simulator (and optionally the expert) with a test node that commands it and records what they
    publish, all spun by one PooledExecutor."""

    def __init__(self, context, expert=None, **parameters):
        values = {"start": START, "command_timeout": 0.5, **parameters}
        self.sim = DiffDriveSim(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.expert = (DiffDriveExpert(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in expert.items()])
                       if expert is not None else None)
        self.node = rclpy.create_node("diffdrive_test", context=context)
        self.commands = self.node.create_publisher(Twist, "cmd_vel", QoSProfile(depth=1))
        self.odometry: list[Odometry] = []
        self.goals: list[PoseStamped] = []
        self.done: list[Bool] = []
        self.node.create_subscription(Odometry, "odom", self.odometry.append, qos_profile_sensor_data)
        self.node.create_subscription(PoseStamped, "goal_pose", self.goals.append, QoSProfile(depth=50))
        self.node.create_subscription(Bool, "expert_done", self.done.append, LATCHED)
        self.executor = PooledExecutor(num_threads=3, context=context)
        for node in (self.sim, self.node, self.expert):
            if node is not None:
                self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.wait_for(lambda: self.odometry)

    def wait_for(self, predicate, timeout_s=15.0):
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert predicate(), "timed out"

    def command(self, v, w):
        message = Twist()
        message.linear.x, message.angular.z = v, w
        self.commands.publish(message)

    def command_until(self, v, w, predicate, timeout_s=15.0):
        """Publish the command every 20 ms until `predicate` holds, as a controller would (a single message
        sent while the simulator's subscription is still being discovered can be lost)."""
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            self.command(v, w)
            time.sleep(0.02)
        assert predicate(), "timed out"

    def sim_seconds(self) -> float:
        return self.sim.sim_steps * self.sim.world.dt

    def close(self):
        self.executor.shutdown()
        for node in (self.sim, self.node, self.expert):
            if node is not None:
                node.destroy_node()
        self.thread.join(timeout=5)


@pytest.fixture
def sim(fresh_ros_domain, ros_context):
    harness = Harness(ros_context, real_time_factor=2.0)
    yield harness
    harness.close()


def test_cmd_vel_drives_along_the_heading_and_odom_reports_pose_and_body_twist(sim):
    sim.command_until(0.3, 0.0, lambda: sim.odometry[-1].pose.pose.position.y > 3.3)
    last = sim.odometry[-1]
    x, _, vx, vy, cos_yaw, sin_yaw = STATE.read(last)  # the project's 6-D state from odom
    assert x == pytest.approx(3.0, abs=1e-3) and (cos_yaw, sin_yaw) == pytest.approx((0.0, 1.0), abs=1e-3)
    assert last.twist.twist.linear.x == pytest.approx(0.3, abs=0.02)  # forward, in the body frame (REP 105)
    assert (vx, vy) == pytest.approx((0.0, 0.3), abs=0.02)  # +y in the map frame
    assert last.header.frame_id == "map" and last.child_frame_id == "base_link"
    before = math.atan2(sin_yaw, cos_yaw)
    sim.command_until(0.0, 1.0, lambda: sim.odometry[-1].twist.twist.angular.z > 0.9)
    assert math.atan2(*STATE.read(sim.odometry[-1])[[5, 4]]) > before  # turning left (counter-clockwise)


def test_commands_are_clipped_to_the_limits(sim):
    sim.command_until(3.0, -7.0, lambda: np.any(sim.sim.current_command() != 0))
    assert np.array_equal(sim.sim.command, [0.5, -2.0])


def test_a_command_older_than_command_timeout_stops_the_robot(sim):
    sim.command_until(0.3, 0.0, lambda: sim.sim.world.body_twist()[0] > 0.25)
    sent = sim.sim.sim_steps
    sim.wait_for(lambda: sim.sim.sim_steps - sent > 120)  # 1.2 s of simulated time > command_timeout 0.5 s
    assert np.array_equal(sim.sim.current_command(), [0.0, 0.0])
    assert abs(sim.sim.world.body_twist()[0]) < 0.01  # stopped (the speed decays within ~0.5 s)


def test_a_non_finite_command_is_rejected_and_never_applied(sim):
    sim.command_until(math.nan, 1.0, lambda: sim.sim.rejected_commands >= 1)
    rejected = sim.sim.rejected_commands
    sim.command_until(0.2, math.inf, lambda: sim.sim.rejected_commands > rejected)
    assert np.array_equal(sim.sim.current_command(), [0.0, 0.0])
    before = len(sim.odometry)
    sim.wait_for(lambda: len(sim.odometry) >= before + 10)  # still stepping and publishing
    assert [sim.odometry[-1].pose.pose.position.x, sim.odometry[-1].pose.pose.position.y] == pytest.approx(
        START[:2], abs=1e-3)


def test_the_costmap_is_latched_with_the_walls_and_obstacle_cells(fresh_ros_domain, ros_context):
    harness = Harness(ros_context, obstacles="2,2")
    try:
        grids = []
        harness.node.create_subscription(OccupancyGrid, "costmap", grids.append, LATCHED)
        harness.wait_for(lambda: grids)
        occupancy = occupancy_grid_to_map(grids[-1])
        cells = {cell: bool(occupancy.occupied[occupancy.cell_of(MazeGrid.cell_to_xy(cell))])
                 for cell in ((2, 2), (2, 3), (3, 3), (0, 0), (4, 2))}
        assert cells == {(2, 2): True, (2, 3): True, (3, 3): False, (0, 0): True, (4, 2): True}, cells
        assert harness.sim.world.grid.walls[2, 2]
    finally:
        harness.close()


def test_the_expert_drives_the_simulated_robot_to_its_goals_in_simulated_time(fresh_ros_domain, ros_context):
    expert = {"goals": 2, "seed": 4, "use_sim_time": True}
    harness = Harness(ros_context, expert=expert, real_time_factor=10.0, publish_clock=True, start=[0.0], seed=4)
    try:
        started = time.monotonic()
        harness.wait_for(lambda: harness.done, timeout_s=120.0)
        wall_seconds, sim_seconds = time.monotonic() - started, harness.sim_seconds()
        print(f"expert: 2 goals in {sim_seconds:.1f} s simulated, {wall_seconds:.1f} s wall "
              f"(real-time factor {sim_seconds / wall_seconds:.1f} of 10 asked)")
        tour = harness.expert.tour
        assert harness.done[-1].data and tour.ended == 2 and tour.reached == 2
        assert harness.expert.goal_poses == 2
        harness.wait_for(lambda: len(harness.goals) == 2)
        assert all(g.header.frame_id == "map" and harness.sim.world.grid.is_free(
            (g.pose.position.x, g.pose.position.y)) for g in harness.goals)
        assert sim_seconds < 2 * 30.0  # the room's routes take under 20 s at up to 0.5 m/s
        last_goal = harness.goals[-1].pose.position
        x, y, _ = harness.sim.world.pose()
        assert math.hypot(x - last_goal.x, y - last_goal.y) <= 0.2 + 0.05  # the last command zero: it stopped there
        stamps = [g.header.stamp.sec + g.header.stamp.nanosec * 1e-9 for g in harness.goals]
        assert 0 < stamps[0] < stamps[1] <= sim_seconds + 0.1  # goal stamps are simulated time
    finally:
        harness.close()


def test_waiting_for_a_recorder_the_expert_holds_its_first_goal_until_cmd_vel_is_recorded_too(fresh_ros_domain,
                                                                                                ros_context):
    expert = {"goals": 1, "seed": 4, "use_sim_time": True, "wait_for_recorder": True}
    harness = Harness(ros_context, expert=expert, real_time_factor=10.0, publish_clock=True, start=[0.0], seed=4)
    try:
        harness.wait_for(lambda: harness.sim_seconds() > 3.0, timeout_s=60.0)
        assert not harness.goals and harness.expert.goal_poses == 0  # goal_pose and odom are listened to, cmd_vel not
        harness.node.create_subscription(Twist, "cmd_vel", lambda message: None, QoSProfile(depth=1))
        harness.wait_for(lambda: harness.goals, timeout_s=60.0)
        assert harness.expert.goal_poses == 1
    finally:
        harness.close()


@pytest.mark.parametrize("node, name, value, reason", [
    (DiffDriveSim, "layout", "mars", "layout='mars' is not one of"),
    (DiffDriveSim, "command_timeout", 0.0, "command_timeout must be a positive number"),
    (DiffDriveSim, "start", [1.0, 2.0, 3.0, 4.0], "start must be [x, y], [x, y, yaw]"),
    (DiffDriveSim, "start", [0.0, 0.0], "start: start_xy [0.0, 0.0] is not free"),
    (DiffDriveSim, "obstacles", "2,9", "is outside the 7 x 7"),
    (DiffDriveSim, "v_max", -1.0, "v_max must be a positive number"),
    (DiffDriveExpert, "layout", "mars", "layout='mars' is not one of"),
    (DiffDriveExpert, "rate", 0.0, "rate must be a positive number"),
    (DiffDriveExpert, "goals", -1, "goals must be in"),
])
def test_bad_parameters_are_refused_with_their_name(ros_context, node, name, value, reason):
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        node(context=ros_context, parameter_overrides=[Parameter(name, value=value)])
