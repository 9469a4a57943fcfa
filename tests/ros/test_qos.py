"""QoS per REP 2003: the simulators publish state reliable, so a subscriber with the default
(reliable) QoS and one with SensorDataQoS (best effort) both receive it."""
import threading
import time

import rclpy
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState

from diffuser_ros.executors import PooledExecutor
from diffuser_ros.kuka_sim_node import KukaSim
from diffuser_ros.maze2d_sim_node import Maze2DSim
from diffuser_ros.msg import Blocks


def received_by_both(context, simulator, topics):
    """{topic: (default-QoS subscriber got messages, SensorDataQoS subscriber got messages)}."""
    node = rclpy.create_node("qos_probe", context=context)
    received = {topic: ([], []) for topic in topics}
    for topic, kind in topics.items():
        node.create_subscription(kind, topic, received[topic][0].append, QoSProfile(depth=10))
        node.create_subscription(kind, topic, received[topic][1].append, qos_profile_sensor_data)
    executor = PooledExecutor(num_threads=2, context=context)
    executor.add_node(simulator)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(a and b for a, b in received.values()):
        time.sleep(0.05)
    executor.shutdown()
    thread.join(timeout=5)
    node.destroy_node()
    simulator.destroy_node()
    return {topic: (bool(a), bool(b)) for topic, (a, b) in received.items()}


def test_maze2d_odom_reaches_reliable_and_best_effort_subscribers(ros_context):
    simulator = Maze2DSim(context=ros_context, parameter_overrides=[Parameter("start", value=[3.0, 3.0])])
    assert received_by_both(ros_context, simulator, {"odom": Odometry}) == {"odom": (True, True)}


def test_kuka_joint_states_and_blocks_reach_reliable_and_best_effort_subscribers(ros_context):
    simulator = KukaSim(context=ros_context)
    result = received_by_both(ros_context, simulator, {"joint_states": JointState, "blocks": Blocks})
    assert result == {"joint_states": (True, True), "blocks": (True, True)}
