"""Raw topic taps: subscribe to named topics as their publishers appear, take the messages as CDR
bytes (no deserialization), with the ros2msg schema of each type, as ROS 2 bags store them. The MCAP
recorder and the Foxglove live view are both taps.
"""
from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

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


def matching_qos(node: Node, topic: str) -> QoSProfile:
    """Like rosbag2: best effort if any publisher is, transient local if all are (latched maps)."""
    publishers = node.get_publishers_info_by_topic(topic)
    qos = QoSProfile(depth=100)
    if any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers):
        qos.reliability = ReliabilityPolicy.BEST_EFFORT
    if publishers and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers):
        qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return qos


class TopicTap(Node):
    """A node that taps the `topics` it is given (relative names resolve in its namespace) once
    each has a publisher; subclasses say what to do with a topic's bytes (`on_topic`)."""

    def __init__(self, name: str, topics, **kwargs):
        super().__init__(name, **kwargs)
        self.wanted = {self.resolve_topic_name(topic) for topic in topics}
        self.tapped: dict[str, str] = {}  # topic -> type
        self.create_timer(0.5, self.discover)

    def discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            # only once a publisher is known: a topic seen through its subscribers alone would get
            # reliable QoS, which a best-effort (sensor data) publisher never matches
            if topic in self.wanted and topic not in self.tapped and types and self.count_publishers(topic):
                self.tap(topic, types[0])

    def tap(self, topic: str, type_name: str) -> None:
        qos = matching_qos(self, topic)
        handle = self.on_topic(topic, type_name, qos)
        self.tapped[topic] = type_name
        self.create_subscription(get_message(type_name), topic, handle, qos, raw=True)

    def on_topic(self, topic: str, type_name: str, qos: QoSProfile):
        """A callback for the topic's raw messages (bytes), which come with `qos`."""
        raise NotImplementedError
