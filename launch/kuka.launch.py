"""Kuka block stacking scenario: the pybullet KUKA iiwa with four blocks.

    ros2 launch diffuser_ros kuka.launch.py

The nodes and their parameters come from config/kuka_stack.yaml, the same file `bringup kuka_stack`
reads. The arm planner joins the scenario once a trained Kuka checkpoint ships (README, "Use with a
real or simulated arm"); until then run `diffuser_planner` with `robot:=kuka_arm` and your checkpoint.
"""
from diffuser_ros.launch_support import scenario_launch_description


def generate_launch_description():
    return scenario_launch_description("kuka_stack")
