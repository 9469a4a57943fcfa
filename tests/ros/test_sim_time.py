"""Simulated time: with `bringup --use-sim-time` the simulator publishes /clock and the planner plans,
tracks and commands on it, so once the first plan is there the robot reaches its goal in the same
simulated time whether the simulation runs at real time or five times faster. (Computing a plan takes
wall-clock time, five times more simulated time at 5x: the robot waits longer for its first plan, and
how long depends on the machine, so bounds count the steps after it.) A simulator told both to use
simulated time and to publish it keeps its own wall clock, says so, and stops on Ctrl-C."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from .closed_loop_client import EPISODE_LIMIT_STEPS, GOAL, PHYSICS_DT, START, running_scenario

CONTROL_RATE_HZ = 100.0  # config/maze2d_umaze.yaml


def stamp_seconds(message) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec * 1e-9


def drive_to_goal(real_time_factor: float) -> dict:
    """Simulated steps from START to GOAL (in all, and after the first plan) and the commands per
    simulated second on the way, at a real-time factor."""
    with running_scenario("maze2d_umaze", START, use_sim_time=True,
                          sim_parameters=(f"real_time_factor:={real_time_factor}",)) as (client, bringup):
        started = client.sim_time()
        response = client.wait(client.send(GOAL, timeout=30.0).get_result_async(), 60)
        assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
        deadline = time.monotonic() + 2.0
        while client.sim_steps_until_within(started, GOAL, 0.5) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        steps = client.sim_steps_until_within(started, GOAL, 0.5)
        first_plan = min(stamp for stamp in map(stamp_seconds, client.paths) if stamp >= started)
        commands = np.array([stamp_seconds(m) for m in client.commands])
        arrived = started + steps * PHYSICS_DT
        rate = np.count_nonzero((commands >= first_plan) & (commands <= arrived)) / (arrived - first_plan)
        assert not bringup.failed()
        return {"steps": steps, "after_first_plan": round((arrived - first_plan) / PHYSICS_DT), "rate": rate,
                "latest_command": float(commands.max())}


@pytest.mark.usefixtures("fresh_ros_domain")
def test_the_goal_takes_the_same_simulated_time_at_five_times_real_time():
    real_time, fast = drive_to_goal(1.0), drive_to_goal(5.0)
    print(f"real time: {real_time}; 5x: {fast}")
    assert real_time["after_first_plan"] <= EPISODE_LIMIT_STEPS and fast["after_first_plan"] <= EPISODE_LIMIT_STEPS
    slack = max(20, 0.25 * real_time["after_first_plan"])
    assert abs(fast["after_first_plan"] - real_time["after_first_plan"]) <= slack, (real_time, fast)
    # commands are stamped with simulated time (seconds since the simulator started, not since 1970)
    assert real_time["latest_command"] < 1e6 and fast["latest_command"] < 1e6
    assert real_time["rate"] > 0.6 * CONTROL_RATE_HZ  # at real time the planner keeps its control rate


@pytest.mark.parametrize("executable, topic, message_type", [("diffuser_ros.maze2d_sim_node", "odom", Odometry),
                                                              ("diffuser_ros.kuka_sim_node", "joint_states", JointState)])
@pytest.mark.usefixtures("fresh_ros_domain")
def test_a_simulator_asked_to_use_and_publish_simulated_time_runs_warns_and_stops_on_ctrl_c(ros_context, executable,
                                                                                           topic, message_type):
    process = subprocess.Popen([sys.executable, "-m", executable, "--ros-args", "-p", "use_sim_time:=true",
                                "-p", "publish_clock:=true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        node = rclpy.create_node("clock_probe", context=ros_context)
        received = []
        node.create_subscription(message_type, topic, received.append, qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        deadline = time.monotonic() + 120  # start-up (imports, pybullet) only bounds a hang
        while not received and time.monotonic() < deadline and process.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert received, f"no {topic} from {executable}"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert "use_sim_time ignored" in output, output
    finally:
        if process.poll() is None:
            process.kill()
