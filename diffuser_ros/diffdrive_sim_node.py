"""`diffdrive_sim`: a differential-drive (unicycle, TurtleBot-like) robot in mujoco as a ROS 2 robot.

Steps the physics at `rate` Hz × `real_time_factor`, takes `cmd_vel` (geometry_msgs/Twist: linear.x the
forward speed, angular.z the yaw rate, clipped to v_max, w_max), publishes `odom` (nav_msgs/Odometry every
rate / odom_rate physics steps: the pose with its yaw quaternion in `frame_id`, the twist in
`child_frame_id` as REP 105 has it), the walls on `maze_markers` and, with the `obstacles` cells walled
too, as a nav_msgs/OccupancyGrid on `costmap` (both latched). A command older than `command_timeout`
(simulated time) stops the robot; a non-finite one is rejected with a warning and stops it too.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from diffuser_core.tasks.diffdrive.layouts import layout_grid, layout_names
from diffuser_core.tasks.diffdrive.robot import V_MAX, W_MAX
from diffuser_core.tasks.diffdrive.world import TIMESTEP, DiffDriveWorld
from diffuser_ros.conversions import occupancy_map_to_grid, seconds_to_stamp, wall_markers
from diffuser_ros.maze2d_sim_node import MAX_TIMER_HZ, parse_cells
from diffuser_ros.parameters import Info, declare
from diffuser_ros.runtime import keep_wall_clock_when_publishing_clock, run_node

PARAMETERS = {
    "layout": "room", "rate": 1.0 / TIMESTEP, "real_time_factor": 1.0, "seed": 0, "start": [0.0],
    "frame_id": "map", "child_frame_id": "base_link", "command_timeout": 0.5, "publish_clock": False,
    "obstacles": "", "costmap_resolution": 0.1, "v_max": V_MAX, "w_max": W_MAX, "odom_rate": 50.0,
}
# Read once at start-up, so fixed afterwards (read-only); set them with -p or a params file.
PARAMETER_INFO = {
    "layout": Info("the world the robot drives in", choices=tuple(layout_names()), read_only=True),
    "rate": Info("physics steps per simulated second (the timestep is 1 / rate)", 50.0, 1000.0, read_only=True),
    "real_time_factor": Info("simulated seconds per wall-clock second", read_only=True),
    "seed": Info("seed of the random start", read_only=True),
    "start": Info("[x, y] or [x, y, yaw] start, or [0.0] for a random free cell and heading", read_only=True),
    "frame_id": Info("frame of odom's pose", read_only=True),
    "child_frame_id": Info("odom's child frame (its twist's frame)", read_only=True),
    "command_timeout": Info("s of simulated time: an older cmd_vel is dropped (the robot stops)", read_only=True),
    "publish_clock": Info("publish simulated time on /clock (for use_sim_time)", read_only=True),
    "obstacles": Info("cells walled at start-up beyond the layout, 'i,j; i,j' (the robot collides with them and "
                      "the costmap shows them); empty: none", read_only=True),
    "costmap_resolution": Info("m per cell of the published costmap", 0.01, 1.0, read_only=True),
    "v_max": Info("m/s: cmd_vel's forward speed is clipped to +-v_max", read_only=True),
    "w_max": Info("rad/s: cmd_vel's yaw rate is clipped to +-w_max", read_only=True),
    "odom_rate": Info("Hz of simulated time: odom is published every rate / odom_rate physics steps", read_only=True),
}


def positive(params: dict, *names: str) -> None:
    """Raise ValueError naming the first of `names` that is not a positive finite number."""
    for name in names:
        value = params[name]
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"parameter {name} must be a positive number, got {value!r}")


def yaw_quaternion(yaw: float) -> tuple[float, float]:
    """(z, w) of the quaternion turning by `yaw` about z."""
    return math.sin(yaw / 2.0), math.cos(yaw / 2.0)


class DiffDriveSim(Node):
    """Differential-drive robot simulator node."""

    def __init__(self, **kwargs):
        super().__init__("diffdrive_sim", **kwargs)
        self.params = self.declare_and_check_parameters()
        keep_wall_clock_when_publishing_clock(self, self.params["publish_clock"])
        self.world = self.make_world()
        self.command = np.zeros(2)
        self.command_step = None  # the physics step at which the last command came
        self.sim_steps = 0
        self.rejected_commands = 0
        self.odom_every = max(1, round(self.params["rate"] / self.params["odom_rate"]))

        # state publishers are reliable (REP 2003): a default-QoS subscriber and a SensorDataQoS one both match
        self.odom_publisher = self.create_publisher(Odometry, "odom", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.marker_publisher = self.create_publisher(MarkerArray, "maze_markers", latched)
        self.costmap_publisher = self.create_publisher(OccupancyGrid, "costmap", latched)
        self.clock_publisher = self.create_publisher(Clock, "/clock", 10) if self.params["publish_clock"] else None
        self.create_subscription(Twist, "cmd_vel", self.on_command, QoSProfile(depth=1))

        steps_per_second = self.params["rate"] * self.params["real_time_factor"]
        self.steps_per_tick = max(1, math.ceil(steps_per_second / MAX_TIMER_HZ))
        self.create_timer(self.steps_per_tick / steps_per_second, self.tick)
        self.marker_publisher.publish(wall_markers(self.world.grid.wall_boxes(), self.header()))
        self.costmap_publisher.publish(occupancy_map_to_grid(
            self.world.grid.occupancy_map(self.params["costmap_resolution"]), self.header()))
        self.odom_publisher.publish(self.odometry())
        x, y, yaw = self.world.pose()
        self.get_logger().info(
            f"layout {self.params['layout']}: {steps_per_second:.0f} physics steps/s (real-time factor "
            f"{self.params['real_time_factor']}), start ({x:.3f}, {y:.3f}) yaw {yaw:.2f}")

    def declare_and_check_parameters(self) -> dict:
        """Declare every parameter up front; raise ValueError naming the bad one."""
        declare(self, PARAMETERS, PARAMETER_INFO)
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        if params["layout"] not in layout_names():
            raise ValueError(f"parameter layout='{params['layout']}' is not one of {layout_names()}")
        positive(params, "rate", "real_time_factor", "command_timeout", "v_max", "w_max", "odom_rate",
                 "costmap_resolution")
        start = [float(v) for v in params["start"]]
        if len(start) not in (1, 2, 3):
            raise ValueError(f"parameter start must be [x, y], [x, y, yaw] or [0.0] for a random start, got {start}")
        params["start"] = start if len(start) > 1 else None
        params["obstacles"] = parse_cells(params["obstacles"], layout_grid(params["layout"]).walls)
        return params

    def make_world(self) -> DiffDriveWorld:
        """The world at its start; ValueError naming `start` when it lies in a wall."""
        params, start = self.params, self.params["start"]
        world = DiffDriveWorld(params["layout"], seed=params["seed"], obstacles=params["obstacles"],
                               v_max=params["v_max"], w_max=params["w_max"], timestep=1.0 / params["rate"])
        if start is not None:
            try:
                world.reset(start_xy=start[:2], yaw=start[2] if len(start) == 3 else 0.0)
            except ValueError as error:
                raise ValueError(f"parameter start: {error}") from None
        return world

    def sim_time(self) -> Time:
        return seconds_to_stamp(self.sim_steps * self.world.dt)

    def header(self) -> Header:
        stamp = self.sim_time() if self.params["publish_clock"] else self.get_clock().now().to_msg()
        return Header(stamp=stamp, frame_id=self.params["frame_id"])

    def on_command(self, message: Twist) -> None:
        command = np.array([message.linear.x, message.angular.z])
        if not np.all(np.isfinite(command)):
            self.rejected_commands += 1
            self.get_logger().warning("rejected a non-finite cmd_vel; stopping the robot", throttle_duration_sec=1.0)
            self.command, self.command_step = np.zeros(2), self.sim_steps
            return
        self.command = self.world.limited(command)
        self.command_step = self.sim_steps

    def current_command(self) -> np.ndarray:
        """The last command, or zero once it is older than command_timeout (simulated time, so the rule
        holds at any real_time_factor)."""
        if self.command_step is None:
            return np.zeros(2)
        age = (self.sim_steps - self.command_step) * self.world.dt
        return self.command if age <= self.params["command_timeout"] else np.zeros(2)

    def tick(self) -> None:
        command = self.current_command()
        for _ in range(self.steps_per_tick):
            self.world.step(command)
            self.sim_steps += 1
            if self.sim_steps % self.odom_every == 0:
                self.odom_publisher.publish(self.odometry())
        if self.clock_publisher is not None:
            self.clock_publisher.publish(Clock(clock=self.sim_time()))

    def odometry(self) -> Odometry:
        """The robot's pose (frame_id) and its twist in the body frame (child_frame_id)."""
        x, y, yaw = self.world.pose()
        forward, yaw_rate = self.world.body_twist()
        message = Odometry(header=self.header(), child_frame_id=self.params["child_frame_id"])
        message.pose.pose.position.x, message.pose.pose.position.y = x, y
        message.pose.pose.orientation.z, message.pose.pose.orientation.w = yaw_quaternion(yaw)
        message.twist.twist.linear.x = forward
        message.twist.twist.linear.y = self.world.lateral_speed()
        message.twist.twist.angular.z = yaw_rate
        return message


def main(argv=None) -> int:
    return run_node(DiffDriveSim, argv, name="diffdrive_sim")


if __name__ == "__main__":
    sys.exit(main())
