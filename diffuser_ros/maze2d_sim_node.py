"""`maze2d_sim`: the D4RL point-mass maze (mujoco) as a ROS 2 robot.

Steps the physics at `rate` Hz × `real_time_factor`, publishes `odom` (nav_msgs/Odometry, frame
`map`), takes `cmd_accel` (geometry_msgs/AccelStamped, linear x/y = force in [-1, 1]) and publishes
the walls on `maze_markers` (latched) for RViz and, with the `obstacles` cells walled too, as a
nav_msgs/OccupancyGrid on `costmap` (latched, nav2's QoS: reliable, transient local) for the planner. A command older than `command_timeout` is dropped
(zero force), and a non-finite one is rejected, so the mass never runs on a stale or bad command.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import AccelStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.layouts import MAZES
from diffuser_ros.conversions import occupancy_map_to_grid, seconds_to_stamp, wall_markers
from diffuser_ros.runtime import keep_wall_clock_when_publishing_clock, run_node
from diffuser_ros.parameters import Info, declare
from visualization_msgs.msg import MarkerArray

PHYSICS_DT = 0.01  # D4RL maze2d: MuJoCo timestep 0.01 s, frame_skip 1
MAX_TIMER_HZ = 250.0  # above this, several physics steps run per timer tick
PARAMETERS = {
    "maze": "umaze", "rate": 1.0 / PHYSICS_DT, "real_time_factor": 1.0, "seed": 0,
    "frame_id": "map", "child_frame_id": "base_link", "start": [0.0], "command_timeout": 0.2,
    "publish_clock": False, "obstacles": "", "costmap_resolution": 0.1,
}


# Read once at start-up, so fixed afterwards (read-only); set them with -p or a params file.
PARAMETER_INFO = {
    "maze": Info("maze layout: umaze | medium | large", read_only=True),
    "rate": Info("physics steps per simulated second (D4RL: dt 0.01 s)", read_only=True),
    "real_time_factor": Info("simulated seconds per wall-clock second", read_only=True),
    "seed": Info("seed of the random start cell", read_only=True),
    "frame_id": Info("frame of odom's pose", read_only=True),
    "child_frame_id": Info("odom's child frame", read_only=True),
    "start": Info("[x, y] start position, or [0.0] for a random open cell", read_only=True),
    "command_timeout": Info("s of simulated time: an older cmd_accel is dropped (zero force)", read_only=True),
    "publish_clock": Info("publish simulated time on /clock (for use_sim_time)", read_only=True),
    "obstacles": Info("maze cells walled at start-up beyond the layout, 'i,j; i,j' (the mass collides with "
                      "them and the costmap shows them); empty: none", read_only=True),
    "costmap_resolution": Info("m per cell of the published costmap", 0.01, 1.0, read_only=True),
}


def parse_cells(text: str, rows) -> tuple[tuple[int, int], ...]:
    """Cells 'i,j; i,j' inside the maze layout; ValueError naming the bad one."""
    cells = []
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        try:
            i, j = (int(v) for v in part.split(","))
        except ValueError:
            raise ValueError(f"parameter obstacles: '{part}' is not a cell 'i,j'") from None
        if not (0 <= i < len(rows) and 0 <= j < len(rows[0])):
            raise ValueError(f"parameter obstacles: cell ({i}, {j}) is outside the {len(rows)} x "
                             f"{len(rows[0])} maze")
        cells.append((i, j))
    return tuple(cells)


class Maze2DSim(Node):
    """Point-mass maze simulator node."""

    def __init__(self, **kwargs):
        super().__init__("maze2d_sim", **kwargs)
        self.params = self.declare_and_check_parameters()
        keep_wall_clock_when_publishing_clock(self, self.params["publish_clock"])
        self.env = Maze2DEnv(self.params["maze"], seed=self.params["seed"], obstacles=self.params["obstacles"])
        start = self.params["start"]
        self.env.reset(seed=self.params["seed"])
        if start:
            self.env.set_state(start[:2], (0.0, 0.0))
        self.command = np.zeros(2)
        self.command_step = None  # the physics step at which the last command came
        self.sim_steps = 0
        self.rejected_commands = 0

        # state publishers are reliable (REP 2003): a default-QoS subscriber and a SensorDataQoS one both match
        self.odom_publisher = self.create_publisher(Odometry, "odom", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.marker_publisher = self.create_publisher(MarkerArray, "maze_markers", latched)
        self.clock_publisher = self.create_publisher(Clock, "/clock", 10) if self.params["publish_clock"] else None
        self.create_subscription(AccelStamped, "cmd_accel", self.on_command, QoSProfile(depth=1))

        steps_per_second = self.params["rate"] * self.params["real_time_factor"]
        self.steps_per_tick = max(1, math.ceil(steps_per_second / MAX_TIMER_HZ))
        self.create_timer(self.steps_per_tick / steps_per_second, self.tick)
        self.costmap_publisher = self.create_publisher(OccupancyGrid, "costmap", latched)
        self.marker_publisher.publish(wall_markers(self.env.wall_boxes(), self.header()))
        self.costmap_publisher.publish(occupancy_map_to_grid(
            self.env.grid.occupancy_map(self.params["costmap_resolution"]), self.header()))
        self.get_logger().info(
            f"maze {self.params['maze']}: {steps_per_second:.0f} physics steps/s "
            f"(real-time factor {self.params['real_time_factor']}), start {self.env.observation()[:2].round(3)}")

    def declare_and_check_parameters(self) -> dict:
        """Declare every parameter up front; raise ValueError naming the bad one."""
        declare(self, PARAMETERS, PARAMETER_INFO)
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        if params["maze"] not in MAZES:
            raise ValueError(f"parameter maze='{params['maze']}' is not one of {sorted(MAZES)}")
        for name in ("rate", "real_time_factor", "command_timeout"):
            if not (isinstance(params[name], (int, float)) and math.isfinite(params[name]) and params[name] > 0):
                raise ValueError(f"parameter {name} must be a positive number, got {params[name]!r}")
        start = [float(v) for v in params["start"]]
        params["start"] = start if len(start) == 2 else None
        if len(start) not in (1, 2):
            raise ValueError(f"parameter start must be [x, y] (or [0.0] for a random open cell), got {start}")
        params["obstacles"] = parse_cells(params["obstacles"], MAZES[params["maze"]].rows)
        return params

    def sim_time(self) -> Time:
        return seconds_to_stamp(self.sim_steps * PHYSICS_DT)

    def header(self) -> Header:
        stamp = self.sim_time() if self.params["publish_clock"] else self.get_clock().now().to_msg()
        return Header(stamp=stamp, frame_id=self.params["frame_id"])

    def on_command(self, message: AccelStamped) -> None:
        force = np.array([message.accel.linear.x, message.accel.linear.y])
        if not np.all(np.isfinite(force)):
            self.rejected_commands += 1
            self.get_logger().warning("rejected a non-finite cmd_accel; applying zero force",
                                   throttle_duration_sec=1.0)
            self.command, self.command_step = np.zeros(2), self.sim_steps
            return
        self.command = np.clip(force, -1.0, 1.0)
        self.command_step = self.sim_steps

    def current_force(self) -> np.ndarray:
        """The last command, or zero once it is older than command_timeout (simulated time, so the
        rule holds at any real_time_factor)."""
        if self.command_step is None:
            return np.zeros(2)
        age = (self.sim_steps - self.command_step) * PHYSICS_DT
        return self.command if age <= self.params["command_timeout"] else np.zeros(2)

    def tick(self) -> None:
        force = self.current_force()
        for _ in range(self.steps_per_tick):
            self.env.simulate(float(force[0]), float(force[1]))
            self.sim_steps += 1
        if self.clock_publisher is not None:
            self.clock_publisher.publish(Clock(clock=self.sim_time()))
        self.odom_publisher.publish(self.odometry())

    def odometry(self) -> Odometry:
        x, y, vx, vy = self.env.observation()
        message = Odometry(header=self.header(), child_frame_id=self.params["child_frame_id"])
        message.pose.pose.position.x, message.pose.pose.position.y = float(x), float(y)
        message.pose.pose.orientation.w = 1.0
        message.twist.twist.linear.x, message.twist.twist.linear.y = float(vx), float(vy)
        return message


def main(argv=None) -> int:
    return run_node(Maze2DSim, argv, name="maze2d_sim")


if __name__ == "__main__":
    sys.exit(main())
