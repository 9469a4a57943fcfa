"""`diffdrive_expert`: the scripted expert that drives the differential-drive robot to random goals, for
recording demonstrations (`bringup diffdrive_record --use-sim-time --record demos.mcap`).

Reads `odom` (nav_msgs/Odometry), publishes `cmd_vel` (geometry_msgs/Twist) at `rate` Hz of the node's
clock (simulated time under use_sim_time) and each goal once on `goal_pose` (geometry_msgs/PoseStamped,
latched) when it starts toward it; the next goal comes once the robot is within `goal_tolerance` or after
`goal_timeout` s. After `goals` goals (0: never) it publishes a zero cmd_vel, logs "expert: done N goals",
publishes true on `expert_done` (std_msgs/Bool, latched) and stays up, commanding nothing more. The tour
itself is diffuser_core.tasks.diffdrive.expert.ExpertTour, the one the offline rollouts run. With
`wait_for_recorder` it commands zero until a recorder has subscribed, so the recording holds every goal.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Header

from diffuser_core.tasks.diffdrive.expert import GOAL_TIMEOUT, GOAL_TOLERANCE, ExpertTour, RouteExpert
from diffuser_core.tasks.diffdrive.layouts import layout_grid, layout_names
from diffuser_core.tasks.diffdrive.robot import V_MAX, W_MAX
from diffuser_ros.diffdrive_sim_node import positive
from diffuser_ros.maze2d_sim_node import parse_cells
from diffuser_ros.parameters import Info, declare
from diffuser_ros.robot_messages import StateMapping
from rclpy.executors import ExternalShutdownException

from diffuser_ros.runtime import run_node

STATE = StateMapping("odometry", ("x", "y", "velocity_x", "velocity_y", "cos_yaw", "sin_yaw"))
PARAMETERS = {
    "layout": "room", "obstacles": "", "seed": 0, "rate": 10.0, "goals": 0, "goal_timeout": GOAL_TIMEOUT,
    "goal_tolerance": GOAL_TOLERANCE, "v_max": V_MAX, "w_max": W_MAX, "frame_id": "map", "state_timeout": 0.5,
    "exit_when_done": False, "wait_for_recorder": False,
}
PARAMETER_INFO = {
    "layout": Info("the world the robot drives in (the simulator's)", choices=tuple(layout_names()), read_only=True),
    "obstacles": Info("cells walled beyond the layout, 'i,j; i,j' (the simulator's): routes go around them",
                      read_only=True),
    "seed": Info("seed of the goals and of the speed's wander", read_only=True),
    "rate": Info("Hz: cmd_vel commands per second of the node's clock", read_only=True),
    "goals": Info("goals to drive to, then stop (0: forever)", 0, read_only=True),
    "goal_timeout": Info("s: a goal not reached in this long is given up for the next", read_only=True),
    "goal_tolerance": Info("m: a goal is reached this close", read_only=True),
    "v_max": Info("m/s: the expert's top forward speed", read_only=True),
    "w_max": Info("rad/s: the expert's top yaw rate", read_only=True),
    "frame_id": Info("frame of goal_pose (odom's pose frame)", read_only=True),
    "state_timeout": Info("s: with older odom the expert commands zero", read_only=True),
    "exit_when_done": Info("end the process once the goals are done (`bringup --exit-with diffdrive_expert` then "
                           "stops the rest, the recording included)", read_only=True),
    "wait_for_recorder": Info("hold the first goal until goal_pose, odom and cmd_vel each have a subscriber "
                              "beyond the simulator and this node (a recorder), so a recording holds every goal",
                              read_only=True),
}


def twist(command) -> Twist:
    """The Twist carrying (v, w)."""
    message = Twist()
    message.linear.x, message.angular.z = float(command[0]), float(command[1])
    return message


class DiffDriveExpert(Node):
    """Scripted expert node: a tour of random goals driven with RouteExpert."""

    def __init__(self, **kwargs):
        super().__init__("diffdrive_expert", **kwargs)
        self.params = params = self.declare_and_check_parameters()
        rng = np.random.default_rng(params["seed"])
        grid = layout_grid(params["layout"]).with_walls(params["obstacles"])
        expert = RouteExpert(grid, params["v_max"], params["w_max"], rng)
        self.tour = ExpertTour(expert, rng, params["goals"], params["goal_tolerance"], params["goal_timeout"])
        self.state, self.state_time = None, -math.inf
        self.goal_poses = 0
        self.waiting_for_recorder = params["wait_for_recorder"]

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.command_publisher = self.create_publisher(Twist, "cmd_vel", QoSProfile(depth=1))
        self.goal_publisher = self.create_publisher(PoseStamped, "goal_pose", latched)
        self.done_publisher = self.create_publisher(Bool, "expert_done", latched)
        self.create_subscription(Odometry, "odom", self.on_odometry, QoSProfile(depth=10))
        self.timer = self.create_timer(1.0 / params["rate"], self.tick)
        self.get_logger().info(f"expert on layout {params['layout']}: "
                               f"{params['goals'] or 'endless'} goals, cmd_vel at {params['rate']} Hz")

    def declare_and_check_parameters(self) -> dict:
        """Declare every parameter up front; raise ValueError naming the bad one."""
        declare(self, PARAMETERS, PARAMETER_INFO)
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        if params["layout"] not in layout_names():
            raise ValueError(f"parameter layout='{params['layout']}' is not one of {layout_names()}")
        positive(params, "rate", "goal_timeout", "goal_tolerance", "v_max", "w_max", "state_timeout")
        params["obstacles"] = parse_cells(params["obstacles"], layout_grid(params["layout"]).walls)
        return params

    def now(self) -> float:
        """The node's clock in seconds (simulated time under use_sim_time)."""
        return self.get_clock().now().nanoseconds * 1e-9

    def on_odometry(self, message: Odometry) -> None:
        try:
            self.state = STATE.read(message)
        except ValueError as error:
            self.get_logger().warning(f"ignored odom: {error}", throttle_duration_sec=1.0)
            return
        self.state_time = self.now()

    def recorder_listening(self) -> bool:
        """Whether a subscriber beyond the simulator and this node listens on goal_pose, odom and cmd_vel."""
        return (self.goal_publisher.get_subscription_count() >= 1 and self.count_subscribers("odom") >= 2
                and self.count_subscribers("cmd_vel") >= 2)

    def tick(self) -> None:
        now = self.now()
        if self.waiting_for_recorder and self.recorder_listening():
            self.waiting_for_recorder = False
            self.get_logger().info("expert: a recorder listens, starting the tour")
        if self.waiting_for_recorder or self.state is None or now - self.state_time > self.params["state_timeout"]:
            self.command_publisher.publish(twist((0.0, 0.0)))
            return
        step = self.tour.tick(self.state, now)
        if step.ended:
            self.get_logger().info(f"goal {self.tour.ended}: {step.ended}")
        if step.new_goal is not None:
            self.publish_goal(step.new_goal)
        self.command_publisher.publish(twist(step.command))
        if step.done:
            self.finish()

    def publish_goal(self, goal_xy: np.ndarray) -> None:
        message = PoseStamped(header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params["frame_id"]))
        message.pose.position.x, message.pose.position.y = float(goal_xy[0]), float(goal_xy[1])
        message.pose.orientation.w = 1.0
        self.goal_publisher.publish(message)
        self.goal_poses += 1

    def finish(self) -> None:
        """The tour is over: stop commanding and say so."""
        self.timer.cancel()
        self.get_logger().info(f"expert: done {self.tour.ended} goals ({self.tour.reached} reached)")
        self.done_publisher.publish(Bool(data=True))
        if self.params["exit_when_done"]:
            raise ExternalShutdownException("expert: done")

    def stop_safely(self) -> None:
        """On shutdown: a last zero command, so the robot does not run on until the simulator's timeout."""
        self.command_publisher.publish(twist((0.0, 0.0)))


def main(argv=None) -> int:
    return run_node(DiffDriveExpert, argv, name="diffdrive_expert")


if __name__ == "__main__":
    sys.exit(main())
