"""The README's demo (Maze2D U-Maze, shipped checkpoint) end to end as a process, and its wait for the
simulator's first state, which keeps a goal from reaching the planner before the robot's state does."""
import subprocess
import sys

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from diffuser_ros.demo_support import wait_until


def test_the_maze_demo_reaches_its_goal_and_saves_a_plot(tmp_path, fresh_ros_domain):
    plot = tmp_path / "umaze.png"
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.demo", "--plot", str(plot)],
                            capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "demo: SUCCESS — reached goal" in result.stdout and "in the goal region after" in result.stdout, output
    assert plot.is_file() and plot.stat().st_size > 10_000


def spin_one_node(context):
    node = rclpy.create_node("wait_until_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return node, executor


def test_wait_until_gives_up_with_the_reason_and_stops_when_a_node_died(ros_context):
    node, executor = spin_one_node(ros_context)
    checks = []
    with pytest.raises(RuntimeError, match="no odom from the simulator after 0 s"):
        wait_until(executor, lambda: False, "odom from the simulator", lambda: checks.append(1), timeout_s=0.3)
    assert len(checks) >= 2

    def node_died():
        raise RuntimeError("maze2d_sim exited with code 1")

    with pytest.raises(RuntimeError, match="maze2d_sim exited"):
        wait_until(executor, lambda: False, "odom", node_died, timeout_s=30.0)
    wait_until(executor, lambda: True, "odom", node_died, timeout_s=0.0)  # ready at once: no check, no wait
    executor.shutdown()
    node.destroy_node()
