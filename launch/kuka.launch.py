"""Kuka block stacking scenario: the pybullet KUKA iiwa with four blocks and the Diffuser arm planner.

    ros2 launch diffuser_ros kuka.launch.py
    ros2 run diffuser_ros send_stack_goal red:green green:blue blue:yellow   # another shell

The nodes and their parameters come from config/kuka_stack.yaml, the same file `bringup kuka_stack`
reads (README, "Use with a real or simulated arm").
"""
from diffuser_ros.launch_support import scenario_launch_description


def generate_launch_description():
    return scenario_launch_description("kuka_stack")
