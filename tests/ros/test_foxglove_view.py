"""The live view for pip installs: `bringup --foxglove` serves the robot's topics on a Foxglove
WebSocket, and a client speaking the protocol (the Foxglove app, here a test client) sees odom and
plans as ROS 2 messages and sends a goal the robot then reaches."""
import asyncio
import json
import socket
import struct

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.serialization import deserialize_message, serialize_message

from .closed_loop_client import GOAL, START, running_scenario

websockets = pytest.importorskip("websockets")

SUBPROTOCOL = "foxglove.sdk.v1"  # foxglove-sdk's server (the app speaks it)
MESSAGE_DATA = 0x01  # binary opcode, both directions
ADVERTISE_SETTLE_S = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FoxgloveClient:
    """The protocol's client side: server info, advertised channels, subscriptions, binary message
    frames, and client channels it publishes on."""

    def __init__(self, websocket):
        self.ws, self.info, self.channels, self.subscriptions = websocket, None, {}, {}

    @classmethod
    async def connect(cls, port: int, timeout_s: float = 60.0) -> "FoxgloveClient":
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                return cls(await websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=[SUBPROTOCOL]))
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def receive(self):
        """The next frame: JSON operations update the client's view; a message frame returns
        (topic, payload)."""
        frame = await asyncio.wait_for(self.ws.recv(), 30)
        if isinstance(frame, str):
            operation = json.loads(frame)
            if operation["op"] == "serverInfo":
                self.info = operation
            elif operation["op"] == "advertise":
                self.channels.update({channel["topic"]: channel for channel in operation["channels"]})
            return None
        assert frame[0] == MESSAGE_DATA, f"unexpected binary opcode {frame[0]}"
        subscription, _log_time = struct.unpack_from("<IQ", frame, 1)
        return self.subscriptions[subscription], bytes(frame[13:])

    async def until_advertised(self, topics) -> None:
        """Wait for the channels, then a moment: a subscription sent the instant a channel is
        advertised can reach the server before the channel does ("unknown channel")."""
        while not (self.info and set(topics) <= set(self.channels)):
            await self.receive()
        await asyncio.sleep(ADVERTISE_SETTLE_S)

    async def subscribe(self, topics) -> None:
        for topic in topics:
            self.subscriptions[len(self.subscriptions) + 1] = topic
        await self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": number, "channelId": self.channels[topic]["id"]} for number, topic in self.subscriptions.items()]}))

    async def advertise(self, channel_id: int, topic: str, schema_name: str) -> None:
        await self.ws.send(json.dumps({"op": "advertise", "channels": [
            {"id": channel_id, "topic": topic, "encoding": "cdr", "schemaName": schema_name}]}))

    async def publish(self, channel_id: int, payload: bytes) -> None:
        await self.ws.send(struct.pack("<BI", MESSAGE_DATA, channel_id) + payload)


def goal_pose(x: float, y: float) -> bytes:
    message = PoseStamped()
    message.header.frame_id = "map"
    message.pose.position.x, message.pose.position.y, message.pose.orientation.w = x, y, 1.0
    return serialize_message(message)


async def drive_through_foxglove(port: int) -> dict:
    """Connect, subscribe to odom and plan, send GOAL as a client-published goal_pose, and follow the
    decoded odometry until the robot is within 0.5 m of it."""
    client = await FoxgloveClient.connect(port)
    await client.until_advertised(["/odom", "/maze_markers", "/diagnostics"])
    await client.subscribe(["/odom"])
    await client.advertise(1, "/goal_pose", "geometry_msgs/msg/PoseStamped")
    seen = {"odom": 0, "plan": 0, "closest": np.inf}
    loop = asyncio.get_running_loop()
    deadline, published = loop.time() + 40.0, False
    while seen["closest"] > 0.5 and loop.time() < deadline:
        if not published and seen["odom"]:
            await client.publish(1, goal_pose(*GOAL))
            published = True
        if "/plan" in client.channels and "/plan" not in client.subscriptions.values():
            await client.until_advertised(["/plan"])
            await client.subscribe(["/plan"])
        received = await client.receive()
        if received is None:
            continue
        topic, payload = received
        if topic == "/odom":
            odom = deserialize_message(payload, Odometry)
            seen["odom"] += 1
            seen["closest"] = min(seen["closest"], np.hypot(odom.pose.pose.position.x - GOAL[0],
                                                            odom.pose.pose.position.y - GOAL[1]))
        elif topic == "/plan":
            plan = deserialize_message(payload, Path)
            seen["plan"] += 1
            seen["plan_length"] = len(plan.poses)
    seen["info"], seen["channels"] = client.info, client.channels
    await client.ws.close()
    return seen


@pytest.mark.usefixtures("fresh_ros_domain")
def test_a_foxglove_client_sees_the_robot_and_its_plans_and_sends_it_a_goal():
    port = free_port()
    with running_scenario("maze2d_umaze", START, foxglove_port=port) as (_, bringup):
        seen = asyncio.run(drive_through_foxglove(port))
        assert not bringup.failed()
    assert "clientPublish" in seen["info"]["capabilities"] and "cdr" in seen["info"]["supportedEncodings"]
    odom = seen["channels"]["/odom"]
    assert (odom["encoding"], odom["schemaEncoding"], odom["schemaName"]) == ("cdr", "ros2msg", "nav_msgs/msg/Odometry")
    assert "MSG: geometry_msgs/PoseWithCovariance" in odom["schema"]  # dependencies travel with the schema
    assert seen["odom"] > 10 and seen["plan"] >= 1 and seen["plan_length"] > 1
    assert seen["closest"] <= 0.5, f"the robot came no closer than {seen['closest']:.2f} m to the goal"


def test_a_foxglove_client_may_publish_only_the_goal():
    from diffuser_ros.foxglove_view import PUBLISHABLE_TOPICS, ros2_type_name

    assert PUBLISHABLE_TOPICS == ("goal_pose",)
    assert ros2_type_name("geometry_msgs/PoseStamped") == ros2_type_name("geometry_msgs/msg/PoseStamped") \
        == "geometry_msgs/msg/PoseStamped"
    with pytest.raises(ValueError, match="not a ROS 2 message type"):
        ros2_type_name("PoseStamped")


def layout_topics(layout: dict) -> set[str]:
    """Every topic a Foxglove layout's panels read or publish."""
    topics = set()
    for config in layout["configById"].values():
        topics |= set(config.get("topics", {}))
        topics |= {config[key].split(".")[0] for key in ("topicName", "topicPath", "topicToRender") if key in config}
        topics |= {path["value"].split(".")[0] for path in config.get("paths", [])}
        topics |= {config["publish"]["poseTopic"]} if "publish" in config else set()
    return topics


@pytest.mark.parametrize("scenario", ["maze2d_umaze", "maze2d_medium", "maze2d_large", "kuka_stack"])
def test_each_scenario_ships_a_layout_of_the_topics_its_view_serves(scenario):
    from pathlib import Path

    from diffuser_ros.bringup import Bringup
    from diffuser_ros.foxglove_view import VIEWED_TOPICS

    root = Path(__file__).resolve().parents[2]
    layout = json.loads((root / "foxglove" / f"{scenario}.json").read_text())
    served = {"/" + topic.lstrip("/") for topic in VIEWED_TOPICS[Bringup(scenario).robot()]}
    assert layout_topics(layout) and layout_topics(layout) <= served, layout_topics(layout) - served
    panels = set(layout["configById"])
    assert panels == set(placed_panels(layout["layout"])), "every configured panel is placed in the layout"
    if scenario.startswith("maze2d"):
        goal = json.loads(layout["configById"]["Publish!goal"]["value"])
        from diffuser_core.tasks.maze2d.layouts import maze_spec

        assert (goal["pose"]["position"]["x"], goal["pose"]["position"]["y"]) == maze_spec(scenario[7:]).goal_cell


def placed_panels(node) -> list[str]:
    """Panel ids placed in a layout tree."""
    if isinstance(node, str):
        return [node]
    return placed_panels(node["first"]) + placed_panels(node["second"])


async def arm_view(port: int) -> dict:
    """The arm's channels, and the first robot_description and joint_states messages."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    client = await FoxgloveClient.connect(port)
    await client.until_advertised(["/joint_states", "/blocks", "/robot_description"])
    await client.subscribe(["/robot_description", "/joint_states"])
    decoded = {}
    while len(decoded) < 2:
        received = await client.receive()
        if received is not None:
            topic, payload = received
            decoded[topic] = deserialize_message(payload, String if topic == "/robot_description" else JointState)
    await client.ws.close()
    return decoded


@pytest.mark.usefixtures("fresh_ros_domain")
def test_the_arm_view_serves_joint_states_blocks_and_the_urdf():
    from diffuser_ros.bringup import Bringup

    port = free_port()
    with Bringup("kuka_stack", only=["kuka_sim"], quiet=True, foxglove_port=port) as bringup:
        decoded = asyncio.run(arm_view(port))
        assert not bringup.failed()
    assert decoded["/robot_description"].data.lstrip().startswith("<?xml") or "<robot" in decoded["/robot_description"].data
    assert len(decoded["/joint_states"].name) == 7
