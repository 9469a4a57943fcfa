"""The MCAP recorder writes real CDR messages with schemas that a standard reader decodes."""
import numpy as np
import rclpy
from mcap_ros2.reader import read_ros2_messages
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data

from diffuser_ros.conversions import array_to_plan_msg
from diffuser_ros.msg import Plan
from diffuser_ros.recorder import Recorder
from diffuser_ros.topics import schema_text

from .conftest import spin_until


def test_schema_includes_nested_definitions():
    text = schema_text("nav_msgs/msg/Odometry")
    for dependency in ("MSG: std_msgs/Header", "MSG: geometry_msgs/PoseWithCovariance", "MSG: geometry_msgs/Point"):
        assert dependency in text
    assert "MSG: geometry_msgs/Pose\n" in schema_text("diffuser_ros/msg/Blocks")


def test_recorded_messages_decode(ros_context, tmp_path):
    output = tmp_path / "run.mcap"
    talker = rclpy.create_node("talker", context=ros_context)
    odom = talker.create_publisher(Odometry, "odom", qos_profile_sensor_data)
    plans = talker.create_publisher(Plan, "diffuser_plan", 10)
    recorder = Recorder(str(output), ["odom", "diffuser_plan"], context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(talker)
    executor.add_node(recorder)
    plan = np.arange(6, dtype=np.float32).reshape(3, 2)
    message = Odometry()
    message.pose.pose.position.x = 1.5

    def publish_until_recorded():
        recorder.discover()
        odom.publish(message)
        plans.publish(array_to_plan_msg(plan, message.header, 7, 2.0))
        return recorder.count >= 6

    assert spin_until(executor, publish_until_recorded, timeout_s=15.0), f"recorded {recorder.count}"
    recorder.close()
    executor.shutdown()
    decoded = {}
    for item in read_ros2_messages(str(output)):
        decoded.setdefault(item.channel.topic, []).append(item.ros_msg)
    assert decoded["/odom"][0].pose.pose.position.x == 1.5
    got = decoded["/diffuser_plan"][0]
    assert (got.horizon, got.dim, got.denoising_steps) == (3, 2, 7)
    assert np.array_equal(np.asarray(got.data, dtype=np.float32).reshape(3, 2), plan)
