"""`maze2d_sim`'s own fault behaviour over the real rclpy: a non-finite command is rejected (zero
force) and the node keeps running, a command older than `command_timeout` stops pushing, forces are
clipped to [-1, 1], walls stop the mass, and bad parameters are refused with their name."""
import math
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import AccelStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_ros.conversions import occupancy_grid_to_map

from diffuser_ros.executors import PooledExecutor
from diffuser_ros.maze2d_sim_node import Maze2DSim

START = (3.0, 3.0)  # U-Maze top-right corner cell; its walls' faces are 0.3 m up and to the right


class SimHarness:
    """The simulator node and a test node that commands it and records its odometry."""

    def __init__(self, context, **parameters):
        values = {"start": list(START), "command_timeout": 0.2, **parameters}
        self.sim = Maze2DSim(context=context,
                             parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.node = rclpy.create_node("sim_test", context=context)
        self.commands = self.node.create_publisher(AccelStamped, "cmd_accel", QoSProfile(depth=1))
        self.odometry: list[Odometry] = []
        self.node.create_subscription(Odometry, "odom", self.odometry.append, qos_profile_sensor_data)
        self.executor = PooledExecutor(num_threads=3, context=context)
        self.executor.add_node(self.sim)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.wait_for(lambda: self.odometry and self.commands.get_subscription_count() > 0)

    def wait_for(self, predicate, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert predicate(), "timed out"

    def command(self, x, y):
        message = AccelStamped()
        message.header.frame_id = "map"
        message.accel.linear.x, message.accel.linear.y = x, y
        self.commands.publish(message)

    def command_until(self, x, y, predicate, timeout_s=10.0):
        """Publish the command every 20 ms until `predicate` holds, as a controller would: a single message
        sent while the simulator's subscription is still being discovered can be lost (failed once in CI)."""
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            self.command(x, y)
            time.sleep(0.02)
        assert predicate(), "timed out"

    def position(self):
        pose = self.odometry[-1].pose.pose.position
        return np.array([pose.x, pose.y])

    def close(self):
        self.executor.shutdown()
        self.sim.destroy_node()
        self.node.destroy_node()
        self.thread.join(timeout=5)


@pytest.fixture
def sim(fresh_ros_domain, ros_context):
    """In a ROS domain no earlier test module used (fresh_ros_domain is module-scoped): nodes of other
    modules' tests cannot answer for this simulator. Within the module a destroyed simulator can still
    linger in discovery, which is why the tests republish each command until it takes effect."""
    harness = SimHarness(ros_context, real_time_factor=2.0)
    yield harness
    harness.close()


def test_non_finite_command_is_rejected_with_zero_force_and_the_node_keeps_running(sim):
    sim.command_until(math.nan, 1.0, lambda: sim.sim.rejected_commands >= 1)
    rejected = sim.sim.rejected_commands
    sim.command_until(1.0, math.inf, lambda: sim.sim.rejected_commands > rejected)
    assert np.array_equal(sim.sim.current_force(), [0.0, 0.0])
    before = len(sim.odometry)
    sim.wait_for(lambda: len(sim.odometry) >= before + 10, timeout_s=5.0)  # still stepping and publishing
    assert np.allclose(sim.position(), START, atol=1e-3)  # never pushed
    state = sim.odometry[-1]
    assert all(math.isfinite(v) for v in (state.pose.pose.position.x, state.pose.pose.position.y,
                                          state.twist.twist.linear.x, state.twist.twist.linear.y))


def test_a_command_older_than_command_timeout_stops_pushing(sim):
    sim.command_until(-1.0, 0.0, lambda: np.any(sim.sim.current_force() != 0))
    time.sleep(0.35)  # > command_timeout 0.2 s, with no new command
    assert np.array_equal(sim.sim.current_force(), [0.0, 0.0])
    # the simulator's own state: the newest odometry received may still be from before the force stopped
    speed = abs(sim.sim.env.observation()[2])
    time.sleep(0.3)  # with zero force the point mass only coasts (D4RL's model has no friction on velocity)
    assert abs(sim.sim.env.observation()[2]) <= speed + 1e-6


def test_forces_are_clipped_to_the_unit_box(sim):
    sim.command_until(5.0, -7.0, lambda: np.any(sim.sim.current_force() != 0))
    assert np.array_equal(sim.sim.command, [1.0, -1.0])


def test_a_wall_stops_the_mass(fresh_ros_domain, ros_context):
    harness = SimHarness(ros_context, real_time_factor=4.0, command_timeout=1.0)
    try:
        # 6 simulated seconds pushing up-right into the corner walls, counted in physics steps so that a
        # loaded machine (a simulator running slower than real time) still pushes that long
        harness.command_until(1.0, 1.0, lambda: harness.sim.sim_steps >= 600, timeout_s=30.0)
        harness.wait_for(lambda: len(harness.odometry) > 0)
        # The corner walls' faces are 0.3 m past the start cell's centre, so the mass (radius 0.1) stops at
        # 0.2 m; MuJoCo's soft contact lets it sink about 1.5 cm into the wall on impact, then settle outside.
        limit = np.array(START) + 0.2 + 0.03
        reached = np.max([[m.pose.pose.position.x, m.pose.pose.position.y] for m in harness.odometry], axis=0)
        assert np.all(reached < limit), reached
        assert np.all(reached > np.array(START) + 0.15), reached  # it did reach the walls
        assert harness.sim.env.is_free(harness.sim.env.observation()[:2])  # settled clear of the walls
    finally:
        harness.close()


def test_obstacle_cells_are_walls_and_the_latched_costmap_shows_them(fresh_ros_domain, ros_context):
    harness = SimHarness(ros_context, obstacles="3,2")  # the cell beside START, on the way to the goal
    try:
        grids = []
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        harness.node.create_subscription(OccupancyGrid, "costmap", grids.append, latched)
        harness.wait_for(lambda: grids)
        occupancy = occupancy_grid_to_map(grids[-1])
        centres = {cell: Maze2DEnv.cell_to_xy(cell) for cell in ((3, 2), (3, 3), (0, 0))}
        occupied = {cell: bool(occupancy.occupied[occupancy.cell_of(xy)]) for cell, xy in centres.items()}
        assert occupied == {(3, 2): True, (3, 3): False, (0, 0): True}, occupied
        assert harness.sim.env.grid.walls[3, 2] and not harness.sim.env.is_free(centres[(3, 2)])
    finally:
        harness.close()


@pytest.mark.parametrize("name, value, reason", [
    ("maze", "mars", "maze='mars' is not one of"),
    ("rate", -5.0, "rate must be a positive number"),
    ("command_timeout", 0.0, "command_timeout must be a positive number"),
    ("start", [1.0, 2.0, 3.0], "start must be [x, y]"),
    ("obstacles", "3", "'3' is not a cell"),
    ("obstacles", "2,3; 9,9", "is outside the 5 x 5 maze"),
])
def test_bad_parameters_are_refused_with_their_name(ros_context, name, value, reason):
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        Maze2DSim(context=ros_context, parameter_overrides=[Parameter(name, value=value)])


def test_bad_parameter_exits_2_with_a_message_and_no_traceback():
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.maze2d_sim_node", "--ros-args", "-p", "maze:=mars"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "maze='mars'" in result.stderr and "Traceback" not in result.stderr
