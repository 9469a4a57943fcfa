"""Closed loop over real rclpy, as a user runs it: `bringup maze2d_umaze` starts the simulator and the
planner as separate processes with the shipped checkpoint; this test is the client."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import PoseStamped
from mcap_ros2.reader import read_ros2_messages

from diffuser_ros.send_goal import make_goal

from .closed_loop_client import EPISODE_LIMIT_STEPS, GOAL, START, running_umaze


@pytest.fixture(scope="module")
def system(fresh_ros_domain):
    """Simulator + planner processes (maze2d_umaze scenario), started once for this module."""
    with running_umaze() as running:
        yield running


def drive_back_to_start(client):
    """Return the mass to START with a goal there (tests share one simulator)."""
    handle = client.send(START, timeout=10.0)
    client.wait(handle.get_result_async(), 20)


def test_reach_goal_succeeds_within_the_episode_limit_with_feedback(system):
    client, bringup = system
    feedback = []
    started = client.sim_time()
    handle = client.send(GOAL, timeout=30.0, feedback=feedback.append)
    response = client.wait(handle.get_result_async(), 40)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    assert response.result.success and response.result.final_distance <= 0.5
    # The result can overtake the last odometry messages on their way to this client: wait for them
    # (the count comes from the messages' simulated stamps, so waiting does not change it).
    deadline = time.monotonic() + 2.0
    while client.sim_steps_until_within(started, GOAL, 0.5) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    steps = client.sim_steps_until_within(started, GOAL, 0.5)
    assert steps is not None and steps <= EPISODE_LIMIT_STEPS, f"reached the goal after {steps} steps"
    assert feedback and feedback[-1].feedback.replans >= 1 and feedback[-1].feedback.plan_time_ms > 0
    assert np.linalg.norm(client.position() - GOAL) < 0.6
    assert not bringup.failed()


def test_cancel_gives_canceled_result_and_zero_command(system):
    client, _ = system
    drive_back_to_start(client)
    handle = client.send(GOAL)
    time.sleep(0.5)
    cancel = client.wait(handle.cancel_goal_async(), 10)
    assert len(cancel.goals_canceling) == 1
    response = client.wait(handle.get_result_async(), 10)
    assert response.status == GoalStatus.STATUS_CANCELED and not response.result.success
    time.sleep(0.3)
    last = client.commands[-1].accel.linear
    assert (last.x, last.y) == (0.0, 0.0)


def test_newer_goal_preempts_the_running_one(system):
    client, _ = system
    drive_back_to_start(client)
    first = client.send(GOAL)
    time.sleep(0.3)
    second = client.send(START, timeout=10.0)
    first_response = client.wait(first.get_result_async(), 10)
    assert first_response.status == GoalStatus.STATUS_ABORTED
    assert "preempted" in first_response.result.message
    second_response = client.wait(second.get_result_async(), 20)
    assert second_response.status == GoalStatus.STATUS_SUCCEEDED, second_response.result.message


def test_goal_pose_starts_a_plan_and_a_path_is_published(system):
    client, _ = system
    client.paths.clear()
    message = PoseStamped()
    message.header.frame_id = "map"
    message.pose.position.x, message.pose.position.y = GOAL
    message.pose.orientation.w = 1.0
    client.goal_pose.publish(message)
    deadline = time.monotonic() + 10
    while not client.paths and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.paths, "no Path published after a goal_pose"
    path = client.paths[-1]
    assert path.header.frame_id == "map" and len(path.poses) >= 64
    end = path.poses[-1].pose.position
    assert np.hypot(end.x - GOAL[0], end.y - GOAL[1]) < 1e-3  # the goal is inpainted exactly


def test_goal_inside_a_wall_is_rejected(system):
    client, _ = system
    handle = client.wait(client.action.send_goal_async(make_goal(2.0, 1.0, "map", 0.0, 0.0)), 10)
    assert not handle.accepted  # cell (2, 1) is the U-Maze's inner wall
    handle = client.wait(client.action.send_goal_async(make_goal(1.0, 1.0, "odom", 0.0, 0.0)), 10)
    assert not handle.accepted  # wrong frame


def test_send_goal_command_line_client(system):
    client, _ = system
    drive_back_to_start(client)
    ok = subprocess.run([sys.executable, "-m", "diffuser_ros.send_goal", "1.0", "1.0", "--timeout", "30"],
                        capture_output=True, text=True, timeout=90)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "distance" in ok.stdout and "succeeded: success=True" in ok.stdout
    refused = subprocess.run([sys.executable, "-m", "diffuser_ros.send_goal", "2.0", "1.0", "--quiet"],
                             capture_output=True, text=True, timeout=90)
    assert refused.returncode == 1 and "goal rejected" in refused.stderr


def test_bringup_stops_every_node_on_ctrl_c(tmp_path):
    """`bringup` as a user runs it, with --record: Ctrl-C (SIGINT) stops all processes cleanly."""
    recording = tmp_path / "run.mcap"
    own_domain = {**os.environ, "ROS_DOMAIN_ID": str((int(os.environ.get("ROS_DOMAIN_ID", "0")) + 1) % 101)}
    process = subprocess.Popen([sys.executable, "-m", "diffuser_ros.bringup", "maze2d_umaze", "--record", str(recording),
                                "--ros-args", "-p", "maze2d_sim:seed:=3"], env=own_domain,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    ready = ("replanning at", "recording /odom", "recording /maze_markers")  # the recorder finds topics as they appear
    deadline = time.monotonic() + 90
    while not all(any(text in line for line in lines) for text in ready) and time.monotonic() < deadline:
        assert process.poll() is None, "".join(lines)
        time.sleep(0.2)
    assert all(any(text in line for line in lines) for text in ready), "".join(lines)
    time.sleep(1.0)  # messages reach the recorder
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    reader.join(timeout=5)
    output = "".join(lines)
    assert any("replanning at" in line for line in lines), output
    assert process.returncode == 0, output
    children = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert not children, f"processes left running: {children}"
    topics = {item.channel.topic for item in read_ros2_messages(str(recording))}
    assert "/odom" in topics and "/maze_markers" in topics


def test_ctrl_c_while_nodes_are_starting_exits_cleanly():
    """Ctrl-C once bringup has started its nodes, while they are still importing torch or loading
    the checkpoint (before bringup's own interpreter is up, Ctrl-C is Python's to handle)."""
    own_domain = {**os.environ, "ROS_DOMAIN_ID": str((int(os.environ.get("ROS_DOMAIN_ID", "0")) + 2) % 101)}
    process = subprocess.Popen([sys.executable, "-m", "diffuser_ros.bringup", "maze2d_umaze"], env=own_domain,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    first_line = process.stdout.readline()
    assert first_line.startswith("bringup: starting"), first_line
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)  # bringup gives starting nodes 30 s
    output = first_line + output
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


def test_the_node_and_the_offline_evaluation_make_the_same_replanning_decisions(system):
    """The same scenario, start, goal and seed: the node over rclpy and the offline node loop
    (diffuser_core.planning.replanning, simulated time) replan about as often before reaching the goal.
    Slack: the node's plans take wall time (tens of ms of a 100 ms tick) and its ticks are not
    aligned with the simulator's steps, and a plan slower than the tick skips one, so counts may
    differ by a few ticks: half the offline count or 4 plans (measured: node 8, offline 12 with a
    trainer on the other core); the horizons follow the same rule (the model's, then shrinking),
    their medians within a quarter of the model's horizon."""
    from argparse import Namespace

    from bench.eval_maze2d import scenario_eval_config
    from diffuser_core.tasks.maze2d.env import Maze2DEnv
    from diffuser_core.tasks.maze2d.evaluation import _load_planner, evaluate_episode

    client, _ = system
    drive_back_to_start(client)
    feedback = []
    before = len(client.paths)
    response = client.wait(client.send(GOAL, timeout=30.0, feedback=feedback.append).get_result_async(), 40)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    node_replans = response.result.replans
    node_horizons = [len(path.poses) for path in client.paths[before:]]

    config, checkpoint = scenario_eval_config("maze2d_umaze", Namespace(episodes=1, seed=0, multi=False,
                                                                         episode_steps=None, device="cpu"))
    planner, _ = _load_planner(checkpoint, config)
    env = Maze2DEnv("umaze")
    assert tuple(env.target) == GOAL  # D4RL's fixed goal; the start is cell START, within reset's 0.1 m noise
    offline_horizons, plan = [], planner.plan
    planner.plan = lambda *args, **kwargs: offline_horizons.append(len((result := plan(*args, **kwargs)).observations)) or result
    episode = evaluate_episode(env, planner, config, 0, start_cell=tuple(int(v) for v in START))
    assert episode.reached
    offline_replans = episode.plan_calls
    print(f"replans before the goal: node {node_replans}, offline {offline_replans}; horizons: node {node_horizons}, "
          f"offline {offline_horizons}")
    assert abs(node_replans - offline_replans) <= max(4, 0.5 * offline_replans), (node_replans, offline_replans)
    # the same horizon rule: the first plan the model's horizon, then shrinking with the route left
    assert node_horizons and node_horizons[0] == offline_horizons[0] == planner.horizon
    assert min(node_horizons) < planner.horizon and min(offline_horizons) < planner.horizon
    assert abs(np.median(node_horizons) - np.median(offline_horizons)) <= 0.25 * planner.horizon
