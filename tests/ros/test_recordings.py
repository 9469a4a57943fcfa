"""`diffuser-ros dataset from-bag`: tiny recordings of real CDR messages (rclpy's serializer), written as a
bare MCAP and as rosbag2 directories, become D4RL files the trainer's loader splits into the right episodes."""
import math

import h5py
import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped, Twist
from mcap.writer import Writer as McapWriter
from nav_msgs.msg import Odometry
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from diffuser_core.data.datasets import load_hdf5_episodes
from diffuser_ros.cli import main
from diffuser_ros.recordings import (ConversionSettings, RecordingError, TopicSeries, build_dataset,
                                     convert_recording, read_topics, sample_states, topic_requests)
from diffuser_ros.robot_messages import CommandMapping, StateMapping
from diffuser_ros.topics import schema_text

BASE = 100.0  # s: recordings start here (a zero header stamp means "no stamp")
TYPES = {Odometry: "nav_msgs/msg/Odometry", Twist: "geometry_msgs/msg/Twist",
         PoseStamped: "geometry_msgs/msg/PoseStamped", JointState: "sensor_msgs/msg/JointState",
         JointTrajectory: "trajectory_msgs/msg/JointTrajectory"}


def stamp(message, seconds: float):
    sec = math.floor(seconds)
    message.header.stamp.sec, message.header.stamp.nanosec = sec, round((seconds - sec) * 1e9)
    return message


def odometry(seconds: float, x: float, y: float = 0.0, yaw: float = 0.0, stamped: bool = True) -> Odometry:
    message = Odometry()
    message.pose.pose.position.x, message.pose.pose.position.y = x, y
    message.pose.pose.orientation.z, message.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    message.twist.twist.linear.x = 2.0
    return stamp(message, seconds) if stamped else message


def twist(linear_x: float, angular_z: float = 0.0) -> Twist:
    message = Twist()
    message.linear.x, message.angular.z = linear_x, angular_z
    return message


def goal(seconds: float, x: float, y: float) -> PoseStamped:
    message = PoseStamped()
    message.pose.position.x, message.pose.position.y = x, y
    return stamp(message, seconds)


def write_mcap(path, messages, finished: bool = True):
    """messages: (topic, message, log time s), written as the recorder writes them (ROS 2 profile, CDR);
    not finished: cut off as when the recorder is killed (small chunks, no summary or footer)."""
    with open(path, "wb") as file:
        writer = McapWriter(file) if finished else McapWriter(file, chunk_size=4000)
        writer.start(profile="ros2", library="test")
        channels = {}
        for index, (topic, message, seconds) in enumerate(sorted(messages, key=lambda item: item[2])):
            if topic not in channels:
                type_name = TYPES[type(message)]
                schema = writer.register_schema(type_name.replace("/msg/", "/"), "ros2msg",
                                                schema_text(type_name).encode())
                channels[topic] = writer.register_channel(topic, "cdr", schema)
            nanoseconds = round(seconds * 1e9)
            writer.add_message(channels[topic], log_time=nanoseconds, data=serialize_message(message),
                               publish_time=nanoseconds, sequence=index)
        if finished:
            writer.finish()
    return path


def write_rosbag2(path, messages, storage: str = "sqlite3"):
    """The same messages as a rosbag2 directory through rosbags' writer."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, message, seconds in sorted(messages, key=lambda item: item[2]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, TYPES[type(message)], typestore=typestore)
            writer.write(connections[topic], round(seconds * 1e9), serialize_message(message))
    return path


def settings(goal_topic=None, rate=10.0, **changes) -> ConversionSettings:
    return ConversionSettings(state_topic="odom", command_topic="cmd_vel", goal_topic=goal_topic,
                              state=StateMapping("odometry", ("x", "y", "linear_x")),
                              command=CommandMapping("twist", ("linear_x", "angular_z")), rate=rate, **changes)


def ramp_recording():
    """Odom every 0.05 s with x = 2 t; cmd_vel every 0.2 s from 0.03 s carrying its index."""
    states = [("/odom", odometry(BASE + 0.05 * k, 2 * 0.05 * k), BASE + 0.05 * k + 0.004) for k in range(41)]
    commands = [("/cmd_vel", twist(float(k), -float(k)), BASE + 0.03 + 0.2 * k) for k in range(10)]
    return states + commands


def test_resampling_interpolates_the_state_and_holds_the_command(tmp_path):
    bag = write_mcap(tmp_path / "ramp.mcap", ramp_recording())
    data = build_dataset(bag, settings()).data
    ticks = BASE + 0.03 + 0.1 * np.arange(19)  # from the first command to the last one (1.83 s)
    np.testing.assert_allclose(data["infos/time"], ticks, atol=1e-6)
    np.testing.assert_allclose(data["observations"][:, 0], 2 * (ticks - BASE), atol=1e-5)
    np.testing.assert_allclose(data["observations"][:, 1:], [[0.0, 2.0]] * 19)
    held = np.arange(19) // 2
    np.testing.assert_array_equal(data["actions"], np.stack([held, -held], axis=1))
    assert data["timeouts"].tolist() == [False] * 18 + [True]


def test_holding_the_state_takes_the_latest_at_or_before_each_tick(tmp_path):
    bag = write_mcap(tmp_path / "ramp.mcap", ramp_recording())
    data = build_dataset(bag, settings(interpolate_state=False)).data
    latest = np.floor((0.03 + 0.1 * np.arange(19)) / 0.05 + 1e-6) * 0.05
    np.testing.assert_allclose(data["observations"][:, 0], 2 * latest, atol=1e-5)


def test_message_time_is_the_header_stamp_else_the_log_time(tmp_path):
    bag = write_mcap(tmp_path / "times.mcap", [("/odom", odometry(BASE + 5.0, 1.0), BASE + 9.0),
                                                ("/odom", odometry(BASE + 5.5, 2.0), BASE + 9.5),
                                                ("/cmd_vel", twist(1.0), BASE + 7.0)])
    series = read_topics(bag, topic_requests(settings()))
    np.testing.assert_allclose(series["odom"].times, [BASE + 5.0, BASE + 5.5])
    np.testing.assert_allclose(series["cmd_vel"].times, [BASE + 7.0])
    assert series["odom"].clock == "header stamp" and series["cmd_vel"].clock == "log time"
    simulated = write_mcap(tmp_path / "sim.mcap", [("/odom", odometry(0.0, 1.0, stamped=False), BASE + 9.0),
                                                   ("/odom", odometry(0.01, 2.0), BASE + 9.5),
                                                   ("/cmd_vel", twist(1.0), BASE + 7.0)])
    np.testing.assert_allclose(read_topics(simulated, topic_requests(settings()))["odom"].times, [0.0, 0.01])
    unstamped = write_mcap(tmp_path / "unstamped.mcap", [("/odom", odometry(0.0, 1.0, stamped=False), BASE + 9.0),
                                                         ("/cmd_vel", twist(1.0), BASE + 7.0)])
    series = read_topics(unstamped, topic_requests(settings()))
    assert series["odom"].clock == "log time" and series["odom"].times.tolist() == [BASE + 9.0]


def test_yaw_is_interpolated_the_short_way_round_and_cos_sin_renormalised():
    fields = ("yaw", "cos_yaw", "sin_yaw")
    yaws = np.array([3.0, -3.0])
    state = TopicSeries("/odom", "nav_msgs/msg/Odometry", np.array([0.0, 1.0]),
                        np.stack([yaws, np.cos(yaws), np.sin(yaws)], axis=1), "header stamp")
    values, known = sample_states(state, np.array([0.5]), fields, max_gap=2.0)
    assert known.all()
    assert abs(abs(values[0, 0]) - math.pi) < 1e-9
    np.testing.assert_allclose(values[0, 1:], [-1.0, 0.0], atol=1e-9)


def episodes_recording():
    """6 s of odom (20 Hz) and cmd_vel (10 Hz) with no command from 2.0 to 3.0 s; goals at 0 and 4 s."""
    states = [("/odom", odometry(BASE + 0.05 * k, 0.05 * k), BASE + 0.05 * k) for k in range(121)]
    command_times = [0.1 * k for k in range(61) if not 2.0 < 0.1 * k < 2.95]
    commands = [("/cmd_vel", twist(round(t, 1)), BASE + t) for t in command_times]
    goals = [("/goal_pose", goal(BASE, 1.0, 2.0), BASE), ("/goal_pose", goal(BASE + 4.0, 3.0, 4.0), BASE + 4.0)]
    return states + commands + goals


def test_episodes_split_at_goal_changes_and_gaps_and_load_for_training(tmp_path):
    bag = write_mcap(tmp_path / "episodes.mcap", episodes_recording())
    out = tmp_path / "data" / "episodes.hdf5"
    summary = convert_recording(bag, settings(goal_topic="goal_pose", max_gap=0.45), out)
    episodes = load_hdf5_episodes(str(out))
    assert [len(e) for e in episodes] == [25, 10, 21]  # 0.0-2.4 s, 3.0-3.9 s (the gap), 4.0-6.0 s (new goal)
    np.testing.assert_allclose(episodes[1].observations[:, 0], 3.0 + 0.1 * np.arange(10), atol=1e-5)
    np.testing.assert_allclose(episodes[2].actions[:, 0], 4.0 + 0.1 * np.arange(21), atol=1e-5)
    with h5py.File(out) as file:
        goals = file["infos/goal"][()]
        assert file.attrs["rate"] == 10.0 and file.attrs["state_fields"] == "x y linear_x"
        assert file.attrs["goal_topic"] == "goal_pose" and file.attrs["source"] == str(bag)
    np.testing.assert_array_equal(goals[:35], [[1.0, 2.0]] * 35)
    np.testing.assert_array_equal(goals[35:], [[3.0, 4.0]] * 21)
    assert (summary.episodes, summary.steps, summary.state_dim, summary.command_dim) == (3, 56, 3, 2)
    assert len(summary.gaps) == 1 and summary.longest_gap.topic == "/cmd_vel"
    assert summary.longest_gap.time == pytest.approx(BASE + 2.0) and summary.longest_gap.duration == pytest.approx(1.0)
    assert "3 episodes, 56 steps at 10 Hz" in summary.text() and "longest 1.000 s on /cmd_vel" in summary.text()


def test_short_episodes_and_steps_before_the_first_goal_are_dropped(tmp_path):
    late_goal = [item for item in episodes_recording() if item[2] != BASE or item[0] != "/goal_pose"]
    bag = write_mcap(tmp_path / "late_goal.mcap", late_goal)
    summary = build_dataset(bag, settings(goal_topic="/goal_pose", max_gap=0.45, min_steps=11)).summary
    assert (summary.episodes, summary.steps, summary.steps_before_goal) == (1, 21, 35)
    too_late = [item for item in late_goal if item[0] != "/goal_pose"] + [
        ("/goal_pose", goal(BASE + 9, 0, 0), BASE + 9)]
    with pytest.raises(RecordingError, match=r"no episode of at least 2 steps .* 57 of them before the first goal"):
        build_dataset(write_mcap(tmp_path / "too_late.mcap", too_late), settings(goal_topic="goal_pose"))
    bag = write_mcap(tmp_path / "all_goals.mcap", episodes_recording())
    summary = build_dataset(bag, settings(goal_topic="/goal_pose", max_gap=0.45, min_steps=11)).summary
    assert (summary.episodes, summary.dropped_episodes, summary.dropped_steps) == (2, 1, 10)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_rosbag2_directory_converts_like_the_mcap_file(tmp_path, storage):
    messages = episodes_recording()
    from_mcap = build_dataset(write_mcap(tmp_path / "run.mcap", messages), settings("goal_pose", max_gap=0.45)).data
    bag = write_rosbag2(tmp_path / "rosbag2_run", messages, storage)
    from_bag = build_dataset(bag, settings("goal_pose", max_gap=0.45)).data
    assert from_bag.keys() == from_mcap.keys()
    for key in from_mcap:
        np.testing.assert_array_equal(from_bag[key], from_mcap[key], err_msg=key)


def test_joint_states_without_efforts_and_joint_trajectories_convert_from_rosbag2(tmp_path):
    """rclpy's Fast-CDR pads the empty effort sequence, which rosbags alone rejects."""
    states = [("/joint_states", stamp(JointState(name=["a", "b"], position=[0.1 * k, -0.1 * k], velocity=[1.0, 2.0]),
                                      BASE + 0.1 * k), BASE + 0.1 * k) for k in range(20)]
    commands = [("/joint_trajectory", JointTrajectory(joint_names=["b", "a"], points=[
        JointTrajectoryPoint(positions=[float(k), -float(k)])]), BASE + 0.2 * k) for k in range(10)]
    bag = write_rosbag2(tmp_path / "arm", states + commands)
    mapping = ConversionSettings("joint_states", "joint_trajectory",
                                 StateMapping("joint_state", ("position:a", "velocity:b")),
                                 CommandMapping("joint_trajectory", ("a", "b")), rate=5.0)
    data = build_dataset(bag / "metadata.yaml", mapping).data
    np.testing.assert_allclose(data["observations"], [[0.2 * k, 2.0] for k in range(10)], atol=1e-6)
    np.testing.assert_array_equal(data["actions"], [[-k, k] for k in range(10)])
    with pytest.raises(RecordingError, match="without metadata.yaml is not a rosbag2 recording"):
        build_dataset(tmp_path, mapping)


def test_an_unfinished_mcap_is_read_up_to_where_it_was_cut_off(tmp_path):
    finished = build_dataset(write_mcap(tmp_path / "done.mcap", episodes_recording()), settings()).data
    cut = build_dataset(write_mcap(tmp_path / "cut.mcap", episodes_recording(), finished=False), settings()).data
    assert 10 < len(cut["observations"]) < len(finished["observations"])
    np.testing.assert_array_equal(cut["observations"][:-1], finished["observations"][:len(cut["observations"]) - 1])


def bad(tmp_path, messages, match, **changes):
    bag = write_mcap(tmp_path / "bad.mcap", messages)
    with pytest.raises(RecordingError, match=match):
        build_dataset(bag, settings(**changes))


def test_a_missing_topic_is_named_with_the_topics_the_file_has(tmp_path):
    states = [item for item in ramp_recording() if item[0] == "/odom"]
    bad(tmp_path, states, r"no command topic 'cmd_vel'.*/odom \(nav_msgs/msg/Odometry\)")
    bad(tmp_path, ramp_recording(), r"no goal topic 'goal_pose'.*/cmd_vel \(geometry_msgs/msg/Twist\)",
        goal_topic="goal_pose")


def test_a_topic_of_the_wrong_type_is_named(tmp_path):
    swapped = [("/cmd_vel" if topic == "/odom" else "/odom", message, t) for topic, message, t in ramp_recording()]
    bad(tmp_path, swapped, r"state topic /odom carries geometry_msgs/msg/Twist, but its mapping reads "
                           r"nav_msgs/msg/Odometry")


def test_non_finite_values_name_topic_time_and_field(tmp_path):
    messages = ramp_recording()
    messages[24] = ("/odom", odometry(BASE + 1.2, float("nan")), BASE + 1.2)
    bad(tmp_path, messages, r"/odom at 101\.200 s \(header stamp, message 24\): odometry has non-finite x")
    messages = ramp_recording()
    messages[-1] = ("/cmd_vel", twist(0.0, float("inf")), BASE + 1.83)
    bad(tmp_path, messages, r"/cmd_vel at 101\.830 s \(log time, message 9\): .*non-finite.*angular_z")


def test_clock_jumps_name_topic_and_time(tmp_path):
    messages = ramp_recording()
    messages[20] = ("/odom", odometry(BASE + 0.5, 1.0), BASE + 1.0)  # stamped 0.5 s after 0.95 s
    bad(tmp_path, messages, r"/odom clock jumps back 0\.450 s at 100\.500 s \(header stamp, message 20")
    messages = ramp_recording() + [("/odom", odometry(BASE + 100.0, 1.0), BASE + 100.0)]
    bad(tmp_path, messages, r"/odom clock jumps forward 98\.000 s .* at 200\.000 s")


def test_missing_unreadable_and_non_overlapping_recordings_say_so(tmp_path):
    with pytest.raises(RecordingError, match="no such recording"):
        build_dataset(tmp_path / "nope.mcap", settings())
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not an mcap file at all" * 10)
    with pytest.raises(RecordingError, match="garbage.mcap: cannot read the recording"):
        build_dataset(garbage, settings())
    states = [item for item in ramp_recording() if item[0] == "/odom"]
    late_commands = [("/cmd_vel", twist(1.0), BASE + 10.0 + 0.1 * k) for k in range(5)]
    bad(tmp_path, states + late_commands, r"/odom \(header stamp, 100\.000 to 102\.000 s\) and /cmd_vel "
                                          r"\(log time, 110\.000 to 110\.400 s\) do not overlap in time "
                                          r"\(they use different clocks\)")


def test_cli_converts_a_recording_end_to_end(tmp_path, capsys):
    bag = write_mcap(tmp_path / "run.mcap", episodes_recording())
    out = tmp_path / "run.hdf5"
    code = main(["dataset", "from-bag", str(bag), "--state", "odom", "--command", "/cmd_vel", "--goal", "goal_pose",
                 "--state-kind", "odometry", "--state-fields", "x", "y", "--command-kind", "twist",
                 "--command-fields", "linear_x", "--rate", "10", "--max-gap", "0.45", "--out", str(out)])
    assert code == 0
    assert "3 episodes, 56 steps at 10 Hz" in capsys.readouterr().out
    assert [len(e) for e in load_hdf5_episodes(str(out))] == [25, 10, 21]
    assert main(["dataset", "from-bag", str(bag), "--state-kind", "odometry", "--out", str(out)]) == 2
    assert "give --state-fields, --command-kind, --command-fields, --rate" in capsys.readouterr().err
    assert main(["dataset", "from-bag", str(bag), "--command", "cmd_accel", "--state-kind", "odometry",
                 "--state-fields", "x", "--command-kind", "twist", "--command-fields", "linear_x", "--rate", "10",
                 "--out", str(out)]) == 2
    assert "diffuser-ros dataset:" in (err := capsys.readouterr().err) and "no command topic 'cmd_accel'" in err


def test_cli_takes_kinds_fields_and_rate_from_a_scenario(tmp_path, capsys):
    scenario = tmp_path / "robot.yaml"
    scenario.write_text(yaml.safe_dump({"diffuser_planner": {"ros__parameters": {
        "state_message": "odometry", "state_fields": ["x", "linear_x"], "command_message": "twist",
        "command_fields": ["linear_x", "angular_z"], "plan_dt": 0.1}}}))
    bag = write_mcap(tmp_path / "run.mcap", episodes_recording())
    out = tmp_path / "run.hdf5"
    assert main(["dataset", "from-bag", str(bag), "--scenario", str(scenario), "--max-gap", "0.45",
                 "--out", str(out)]) == 0
    with h5py.File(out) as file:
        assert (file.attrs["rate"], file.attrs["state_fields"], file.attrs["command_kind"],
                file.attrs["command_fields"]) == (10.0, "x linear_x", "twist", "linear_x angular_z")
        assert file["observations"].shape == (56, 2) and file["actions"].shape == (56, 2)
    assert main(["dataset", "from-bag", str(bag), "--scenario", str(scenario), "--rate", "20",
                 "--state-fields", "y", "--out", str(out)]) == 0
    with h5py.File(out) as file:
        assert file.attrs["rate"] == 20.0 and file["observations"].shape[1] == 1
    assert "at 20 Hz" in capsys.readouterr().out


def test_the_core_commands_still_run_through_the_ros_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0 and "--dataset" in capsys.readouterr().out
