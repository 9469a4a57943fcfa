"""Record a run's topics to an MCAP file (ROS 2 profile: CDR messages, ros2msg schemas).

    python -m diffuser_ros.recorder run.mcap [--topics odom cmd_accel plan ...]

Subscribes to each listed topic once it appears (raw CDR, no deserialization) and writes every
message; the file opens in Foxglove, `ros2 bag` (with the MCAP plugin) and mcap-ros2-support.
"""
from __future__ import annotations

import argparse
import sys

from mcap.writer import Writer

from diffuser_ros.runtime import run_node
from diffuser_ros.topics import TopicTap, schema_text

DEFAULT_TOPICS = ("odom", "cmd_accel", "cmd_vel", "goal_pose", "plan", "plan_markers", "diffuser_plan", "maze_markers",
                  "costmap", "expert_done", "joint_states", "blocks", "joint_trajectory", "gripper_trajectory")


class Recorder(TopicTap):
    """Subscribes to the wanted topics as they appear and appends their raw messages to an MCAP."""

    def __init__(self, path: str, topics: list[str], **kwargs):
        self.file = open(path, "wb")
        self.writer = Writer(self.file)
        self.writer.start(profile="ros2", library="diffuser_ros")
        self.count = 0
        super().__init__("diffuser_recorder", topics, **kwargs)
        self.discover()

    def on_topic(self, topic: str, type_name: str, qos):
        schema = self.writer.register_schema(type_name.replace("/msg/", "/"), "ros2msg",
                                             schema_text(type_name).encode())
        channel = self.writer.register_channel(topic, "cdr", schema)
        self.get_logger().info(f"recording {topic} ({type_name})")
        return lambda data: self.write(channel, data)

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
