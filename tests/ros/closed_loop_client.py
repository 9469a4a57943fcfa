"""A test client of the running maze2d scenario: action client, goal_pose publisher, and recorders of
odom (in simulated time), cmd_accel and plan."""
import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import AccelStamped, PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import qos_profile_sensor_data

from diffuser_ros.action import ReachGoal
from diffuser_ros.send_goal import make_goal

# U-Maze: start in the top-right corner, goal at D4RL's fixed goal cell (1, 1) around the bend.
START, GOAL = (3.0, 3.0), (1.0, 1.0)
EPISODE_LIMIT_STEPS = 300  # D4RL maze2d-umaze
PHYSICS_DT = 0.01


class Client:
    """The test's node: action client, and recorders of odom, cmd_accel and plan."""

    def __init__(self, context):
        self.node = rclpy.create_node("closed_loop_test", context=context)
        self.action = ActionClient(self.node, ReachGoal, "reach_goal")
        self.goal_pose = self.node.create_publisher(PoseStamped, "goal_pose", 1)
        self.states, self.commands, self.paths = [], [], []
        self.node.create_subscription(Odometry, "odom", lambda m: self.states.append(m), qos_profile_sensor_data)
        self.node.create_subscription(AccelStamped, "cmd_accel", lambda m: self.commands.append(m), 10)
        self.node.create_subscription(Path, "plan", lambda m: self.paths.append(m), 10)
        self.executor = MultiThreadedExecutor(num_threads=2, context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait(self, future, timeout_s):
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), f"no answer within {timeout_s} s"
        return future.result()

    def send(self, xy, timeout=0.0, feedback=None):
        handle = self.wait(self.action.send_goal_async(make_goal(*xy, "map", 0.0, timeout),
                                                       feedback_callback=feedback), 10)
        assert handle.accepted
        return handle

    def position(self):
        message = self.states[-1]
        return np.array([message.pose.pose.position.x, message.pose.pose.position.y])

    def sim_steps_until_within(self, since: float, goal, radius: float):
        """Simulation steps from sim time `since` to the first odom within `radius` of `goal`."""
        for message in list(self.states):
            stamp = message.header.stamp.sec + message.header.stamp.nanosec * 1e-9
            position = message.pose.pose.position
            if stamp >= since and np.hypot(position.x - goal[0], position.y - goal[1]) <= radius:
                return round((stamp - since) / PHYSICS_DT)
        return None

    def sim_time(self):
        stamp = self.states[-1].header.stamp
        return stamp.sec + stamp.nanosec * 1e-9

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=5)
