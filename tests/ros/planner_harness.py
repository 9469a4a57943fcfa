"""The planner node under test and a test node beside it (state publisher, command recorder, action
client), over the real rclpy; and a tiny untrained point-mass checkpoint to load."""
import threading
import time
from contextlib import contextmanager

import numpy as np
import rclpy
from geometry_msgs.msg import AccelStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.parameter import Parameter

from diffuser_core.checkpoint import CheckpointConfig, save_checkpoint
from diffuser_core.config import DiffusionConfig, UnetConfig
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.model.diffusion import build_diffusion
from diffuser_ros.action import ReachGoal
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.planner_node import DiffuserPlannerNode
from diffuser_ros.send_goal import make_goal


def write_tiny_checkpoint(path, observation_dim=4, action_dim=2):
    """An untrained 8-channel U-Net over H=16 (enough to exercise the node, not to plan well)."""
    unet, diffusion = UnetConfig(dim=8, dim_mults=(1, 2)), DiffusionConfig(n_timesteps=8)
    model = build_diffusion(observation_dim, action_dim, unet, diffusion)
    rng = np.random.default_rng(0)
    normalizer = TrajectoryNormalizer.fit(rng.uniform(0, 4, (64, observation_dim)),
                                          rng.uniform(-1, 1, (64, action_dim)), "limits")
    config = CheckpointConfig("diffusion", observation_dim, action_dim, horizon=16, diffusion=diffusion, unet=unet,
                              env="maze2d-umaze-v1")
    return save_checkpoint(path, model, normalizer, config)


def overrides(checkpoint, **extra):
    values = {"autostart": True, "checkpoint": str(checkpoint), "denoising_steps": 4, "warm_start_steps": 4, "replan_rate": 20.0,
              "state_timeout": 0.3, "stale_state_grace": 0.6, "threads": 1, **extra}
    return [Parameter(name, value=value) for name, value in values.items()]


class Harness:
    """The planner node and a test node (state publisher, command recorder, action client)."""

    def __init__(self, context, checkpoint, **extra):
        self.planner = DiffuserPlannerNode(context=context, parameter_overrides=overrides(checkpoint, **extra))
        self.node = rclpy.create_node("planner_test", context=context)
        self.odom = self.node.create_publisher(Odometry, "odom", 10)
        self.commands = []
        self.node.create_subscription(AccelStamped, "cmd_accel", self.commands.append, 10)
        self.client = ActionClient(self.node, ReachGoal, "reach_goal")
        self.executor = PooledExecutor(num_threads=8, context=context)
        self.executor.add_node(self.planner)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        assert self.client.wait_for_server(timeout_sec=30), "planner action server not discovered"

    def publish_state(self, x, y, vx=0.0, vy=0.0):
        message = Odometry()
        message.header.frame_id = "map"
        message.pose.pose.position.x, message.pose.pose.position.y = x, y
        message.twist.twist.linear.x, message.twist.twist.linear.y = vx, vy
        self.odom.publish(message)

    def wait(self, future, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), "timed out"
        return future.result()

    def send(self, xy):
        return self.wait(self.client.send_goal_async(make_goal(*xy, "map", 0.5, 0.0)))

    def close(self):
        if self.planner.session is not None:  # let a running action callback return
            self.planner.session.finish("aborted", "test teardown")
        self.executor.shutdown()
        self.client.destroy()
        self.planner.destroy_node()
        self.node.destroy_node()
        self.thread.join(timeout=5)


def stream_state(harness, xy, seconds, stop=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (stop and stop()):
        harness.publish_state(*xy)
        time.sleep(0.01)


@contextmanager
def streaming_state(harness, xy, seconds):
    """Publish state at `xy` every 10 ms in the background for up to `seconds`, while the block runs."""
    done = threading.Event()
    feeder = threading.Thread(target=stream_state, args=(harness, xy, seconds, done.is_set))
    feeder.start()
    try:
        yield
    finally:
        done.set()
        feeder.join()
