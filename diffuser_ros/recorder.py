"""Record a run's topics to an MCAP file (ROS 2 profile: CDR messages, ros2msg schemas).

    python -m diffuser_ros.recorder run.mcap [--topics odom cmd_accel plan ...]

Subscribes to each listed topic once it appears (raw CDR, no deserialization) and writes every
message; the file opens in Foxglove, `ros2 bag` (with the MCAP plugin) and mcap-ros2-support.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

from mcap.writer import Writer
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from diffuser_ros.runtime import run_node

DEFAULT_TOPICS = ("odom", "cmd_accel", "goal_pose", "plan", "plan_markers", "diffuser_plan", "maze_markers",
                  "joint_states", "blocks", "joint_trajectory")
PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
              "uint32", "int64", "uint64", "string", "wstring", "time", "duration"}


def get_message(type_name: str):
    """The Python class of 'pkg/msg/Type'."""
    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def find_definition(type_name: str) -> str:
    """The .msg text of `pkg/msg/Type` from the ament prefixes on AMENT_PREFIX_PATH."""
    package, _, name = type_name.split("/")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"no definition of {type_name} on AMENT_PREFIX_PATH")


def field_types(definition: str, package: str) -> list[str]:
    """Fully qualified non-primitive field types used by a .msg definition."""
    found = []
    for line in definition.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line:  # blank, or a constant
            continue
        base = re.sub(r"\[.*\]|<=\d+", "", line.split()[0])
        if base in PRIMITIVES:
            continue
        if base == "Header":
            base = "std_msgs/Header"
        found.append(base if "/" in base else f"{package}/{base}")
    return found


def schema_text(type_name: str) -> str:
    """The ros2msg schema: the type's definition followed by every dependency, as ROS 2 bags store it."""
    text, seen, queue = find_definition(type_name), set(), []
    queue.extend(field_types(text, type_name.split("/")[0]))
    while queue:
        dependency = queue.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        package, name = dependency.split("/")[0], dependency.split("/")[-1]
        definition = find_definition(f"{package}/msg/{name}")
        text += f"\n{'=' * 80}\nMSG: {package}/{name}\n{definition}"
        queue.extend(field_types(definition, package))
    return text


class Recorder(Node):
    """Subscribes to the wanted topics as they appear and appends their raw messages to an MCAP."""

    def __init__(self, path: str, topics: list[str], **kwargs):
        super().__init__("diffuser_recorder", **kwargs)
        self.file = open(path, "wb")
        self.writer = Writer(self.file)
        self.writer.start(profile="ros2", library="diffuser_ros")
        self.wanted = {self.resolve_topic_name(t) for t in topics}
        self.channels: dict[str, int] = {}
        self.count = 0
        self.create_timer(0.5, self.discover)
        self.discover()

    def discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            # only once a publisher is known: a topic seen through its subscribers alone would get
            # reliable QoS, which a best-effort (sensor data) publisher never matches
            if topic in self.wanted and topic not in self.channels and types and self.count_publishers(topic):
                self.subscribe(topic, types[0])

    def subscribe(self, topic: str, type_name: str) -> None:
        schema = self.writer.register_schema(type_name.replace("/msg/", "/"), "ros2msg",
                                             schema_text(type_name).encode())
        channel = self.writer.register_channel(topic, "cdr", schema)
        self.channels[topic] = channel
        self.create_subscription(get_message(type_name), topic, lambda data, c=channel: self.write(c, data),
                                 self.matching_qos(topic), raw=True)
        self.get_logger().info(f"recording {topic} ({type_name})")

    def matching_qos(self, topic: str) -> QoSProfile:
        """Like rosbag2: best effort if any publisher is, transient local if all are (latched maps)."""
        publishers = self.get_publishers_info_by_topic(topic)
        qos = QoSProfile(depth=100)
        if any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers):
            qos.reliability = ReliabilityPolicy.BEST_EFFORT
        if publishers and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers):
            qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
        return qos

    def write(self, channel: int, data: bytes) -> None:
        now = self.get_clock().now().nanoseconds
        self.writer.add_message(channel, log_time=now, data=data, publish_time=now, sequence=self.count)
        self.count += 1

    def close(self) -> None:
        """Finish the MCAP file (its index and summary); safe to call twice."""
        if not self.file.closed:
            self.writer.finish()
            self.file.close()

    def stop_safely(self) -> None:
        self.close()
        print(f"recorder: wrote {self.count} messages", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="recorder", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the .mcap file to write")
    parser.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS))
    args, ros_args = parser.parse_known_args(argv)
    return run_node(lambda: Recorder(args.output, args.topics), ros_args, name="recorder")


if __name__ == "__main__":
    sys.exit(main())
