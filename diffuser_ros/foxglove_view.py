"""`foxglove_view`: the robot and its plans live in Foxglove, for pip installs without RViz.

    python -m diffuser_ros.foxglove_view --robot point_mass [--host 127.0.0.1] [--port 8765]
    bringup maze2d_umaze --foxglove          # the same, started with the scenario

Serves a Foxglove WebSocket (foxglove-sdk) with the robot's topics as they appear, each with its ROS 2
schema (ros2msg) and CDR messages as they come, so Foxglove shows them as it would from a ROS 2 bridge.
Client publishing is on for `goal_pose` only: Foxglove's 3D panel pose tool, or a Publish panel,
sends a geometry_msgs/PoseStamped there and the planner drives to it. For the arm, the URDF is served
on `robot_description` (std_msgs/String, latched) like robot_state_publisher's. Layouts for each
robot are in foxglove/.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import foxglove
from foxglove import Capability, Channel, Schema
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from diffuser_ros.runtime import run_node
from diffuser_ros.topics import TopicTap, get_message, schema_text

VIEWED_TOPICS = {
    "point_mass": ("odom", "plan", "plan_markers", "diffuser_plan", "maze_markers", "goal_pose", "cmd_accel",
                   "/diagnostics"),
    "kuka_arm": ("joint_states", "blocks", "diffuser_plan", "joint_trajectory", "gripper_trajectory", "robot_description",
                 "/diagnostics"),
}
PUBLISHABLE_TOPICS = ("goal_pose",)  # what a Foxglove client may publish into ROS (relative names)
DEFAULT_PORT = 8765
LATCHED_RESEND_DELAYS_S = (0.05, 0.5)  # after a subscription to a latched topic


class FoxgloveView(TopicTap):
    """Taps the robot's topics into Foxglove channels and publishes clients' goal poses into ROS."""

    def __init__(self, robot: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, **kwargs):
        if robot not in VIEWED_TOPICS:
            raise ValueError(f"robot must be one of {sorted(VIEWED_TOPICS)}, got {robot!r}")
        super().__init__("foxglove_view", VIEWED_TOPICS[robot], **kwargs)
        self.publishable = {self.resolve_topic_name(topic) for topic in PUBLISHABLE_TOPICS}
        self.channels: dict[str, Channel] = {}
        self.latched: dict[str, bytes] = {}  # the last message of each latched topic (maps, the URDF)
        self.client_publishers: dict[tuple[int, int], object] = {}
        self.lock = threading.Lock()
        if robot == "kuka_arm":
            self.publish_robot_description()
        self.server = foxglove.start_server(name="diffuser_ros", host=host, port=port, server_listener=self,
                                            capabilities=[Capability.ClientPublish], supported_encodings=["cdr"])
        self.get_logger().info(f"Foxglove: open ws://{host}:{self.server.port} in Foxglove (Open connection > "
                               f"Foxglove WebSocket); goals on {sorted(self.publishable)}")
        self.discover()

    def publish_robot_description(self) -> None:
        """The arm's URDF on robot_description, latched, as robot_state_publisher serves it."""
        from diffuser_core.tasks.kuka.urdf import load_urdf

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.description_publisher = self.create_publisher(String, "robot_description", latched)
        self.description_publisher.publish(String(data=load_urdf()))

    def on_topic(self, topic: str, type_name: str, qos):
        schema = Schema(name=type_name, encoding="ros2msg", data=schema_text(type_name).encode())
        channel = Channel(topic, schema=schema, message_encoding="cdr")
        self.channels[topic] = channel
        latched = qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
        self.get_logger().info(f"serving {topic} ({type_name}{', latched' if latched else ''})")

        def forward(data: bytes) -> None:
            if latched:
                self.latched[topic] = data
            channel.log(data, log_time=self.get_clock().now().nanoseconds)
        return forward

    # ------------------------------------------------------------------ foxglove.ServerListener
    def on_subscribe(self, client, channel) -> None:
        """A latched topic's last message goes again to a client that subscribes after it came (a
        Foxglove channel keeps no history), so a late viewer still sees the walls and the arm."""
        data = self.latched.get(channel.topic)
        if data is not None:
            threading.Thread(target=self.resend, args=(self.channels[channel.topic], data), daemon=True).start()

    def on_unsubscribe(self, client, channel) -> None:
        """Nothing to undo: a channel streams while any client subscribes."""

    def resend(self, channel: Channel, data: bytes) -> None:
        """Send a latched message again once the subscription that asked for it is in place (the
        server registers it after on_subscribe returns); twice, as a slow server may need longer."""
        for delay_s in LATCHED_RESEND_DELAYS_S:
            time.sleep(delay_s)
            channel.log(data, log_time=self.get_clock().now().nanoseconds)

    def on_client_advertise(self, client, channel) -> None:
        """A client wants to publish: allowed on the goal topic with a ROS 2 type and CDR."""
        topic = self.resolve_topic_name(channel.topic)
        if topic not in self.publishable or channel.encoding != "cdr":
            self.get_logger().warning(f"refused a Foxglove client publishing {channel.topic} ({channel.encoding}): "
                                      f"only {sorted(self.publishable)} in cdr")
            return
        try:
            message_type = get_message(ros2_type_name(channel.schema_name))
        except (ValueError, ImportError, AttributeError) as error:
            self.get_logger().warning(f"refused {channel.topic}: unknown type {channel.schema_name!r} ({error})")
            return
        with self.lock:
            self.client_publishers[(client.id, channel.id)] = self.create_publisher(message_type, topic, 10)
        self.get_logger().info(f"a Foxglove client publishes {topic} ({channel.schema_name})")

    def on_client_unadvertise(self, client, client_channel_id: int) -> None:
        with self.lock:
            publisher = self.client_publishers.pop((client.id, client_channel_id), None)
        if publisher is not None:
            self.destroy_publisher(publisher)

    def on_message_data(self, client, client_channel_id: int, data: bytes) -> None:
        """A client's message, already CDR: published into ROS as it is."""
        with self.lock:
            publisher = self.client_publishers.get((client.id, client_channel_id))
        if publisher is not None:
            publisher.publish(bytes(data))

    def stop_safely(self) -> None:
        self.server.stop()


def ros2_type_name(schema_name: str) -> str:
    """'pkg/msg/Type' from 'pkg/msg/Type' or 'pkg/Type' (both appear in Foxglove schema names)."""
    parts = schema_name.split("/")
    if len(parts) == 2:
        parts.insert(1, "msg")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise ValueError(f"not a ROS 2 message type: {schema_name!r}")
    return "/".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="foxglove_view", description=__doc__.splitlines()[0])
    parser.add_argument("--robot", default="point_mass", choices=sorted(VIEWED_TOPICS))
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args, ros_args = parser.parse_known_args(argv)
    return run_node(lambda: FoxgloveView(args.robot, args.host, args.port), ros_args, name="foxglove_view")


if __name__ == "__main__":
    sys.exit(main())
