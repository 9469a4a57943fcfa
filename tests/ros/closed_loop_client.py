"""A test client of the running maze2d scenario: action client, goal_pose publisher, and recorders of
odom (in simulated time), cmd_accel and plan."""
import threading
import time
from contextlib import contextmanager

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import AccelStamped, PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.action import ActionClient
from rclpy.qos import qos_profile_sensor_data

from diffuser_ros.action import ReachGoal
from diffuser_ros.bringup import Bringup
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.send_goal import make_goal

from .contexts import ros_context_scope

# U-Maze: start in the top-right corner, goal at D4RL's fixed goal cell (1, 1) around the bend.
START, GOAL = (3.0, 3.0), (1.0, 1.0)
EPISODE_LIMIT_STEPS = 300  # D4RL maze2d-umaze
PHYSICS_DT = 0.01


class Client:
    """The test's node: action client, and recorders of odom, cmd_accel and plan."""

    def __init__(self, context, namespace: str = ""):
        self.node = rclpy.create_node("closed_loop_test", context=context, namespace=namespace)
        self.planner_name = f"/{namespace.strip('/')}/diffuser_planner" if namespace.strip("/") else "/diffuser_planner"
        self.action = ActionClient(self.node, ReachGoal, "reach_goal")
        self.goal_pose = self.node.create_publisher(PoseStamped, "goal_pose", 1)
        self.states, self.commands, self.paths, self.diagnostics = [], [], [], []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diagnostics.append(m), 10)
        self.node.create_subscription(Odometry, "odom", lambda m: self.states.append(m), qos_profile_sensor_data)
        self.node.create_subscription(AccelStamped, "cmd_accel", lambda m: self.commands.append(m), 10)
        self.node.create_subscription(Path, "plan", lambda m: self.paths.append(m), 10)
        self.executor = PooledExecutor(num_threads=2, context=context)
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

    def planner_sees_state(self) -> bool:
        """Whether this client's planner (/diagnostics is shared by every namespace: its status is
        named after the planner's full name) says it is active with fresh state."""
        for message in reversed(self.diagnostics):
            for status in message.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(f"{self.planner_name}:") and values.get("lifecycle_state") == "active":
                    return float(values["state_age_s"]) < 0.5
        return False

    def close(self):
        self.executor.shutdown()
        self.action.destroy()
        self.node.destroy_node()
        self.thread.join(timeout=5)


@contextmanager
def running_umaze(*planner_parameters: str):
    """`bringup maze2d_umaze` as processes, the mass at START and odometry in simulated time (so
    tests count simulation steps), plus a connected Client; yields (client, bringup)."""
    with running_scenario("maze2d_umaze", START, *planner_parameters) as running:
        yield running


@contextmanager
def running_scenario(scenario: str, start, *planner_parameters: str, namespace: str = "", clock: bool = True,
                     use_sim_time: bool | None = None, sim_parameters: tuple = (), foxglove_port: int | None = None):
    """`bringup <scenario>` (a Maze2D one) as processes with the mass at `start`, in `namespace`;
    see running_umaze. use_sim_time: `bringup --use-sim-time` (every node on the simulator's
    /clock); sim_parameters: "name:=value" settings of maze2d_sim; foxglove_port: `bringup --foxglove`."""
    ros_args = ["-p", f"maze2d_sim:start:=[{start[0]},{start[1]}]", "-p", f"maze2d_sim:publish_clock:={str(clock).lower()}"]
    for parameter in sim_parameters:
        ros_args += ["-p", f"maze2d_sim:{parameter}"]
    for parameter in planner_parameters:
        ros_args += ["-p", f"diffuser_planner:{parameter}"]
    bringup = Bringup(scenario, quiet=True, ros_args=ros_args, namespace=namespace, use_sim_time=use_sim_time,
                      foxglove_port=foxglove_port).start()
    try:
        with ros_context_scope() as context:
            client = Client(context, namespace)
            try:
                yield wait_until_connected(client, bringup), bringup
            finally:
                client.close()
    finally:
        bringup.stop()


def wait_until_connected(client, bringup):
    """`client` once the planner's action server, the simulator's odometry and the planner's view
    of that state are all up."""
    assert client.action.wait_for_server(timeout_sec=60), f"planner not up (failed: {bringup.failed()})"
    deadline = time.monotonic() + 20
    while not client.states and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.states, "no odom from maze2d_sim"
    deadline = time.monotonic() + 30  # the planner publishes /diagnostics at 1 Hz
    while not client.planner_sees_state() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.planner_sees_state(), "the planner never reported fresh state on /diagnostics"
    return client
