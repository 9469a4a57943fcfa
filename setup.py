"""pip metadata for diffuser_ros: the Python packages and console scripts.

The ROS interfaces (msg/, action/) are built by rosidl through CMakeLists.txt; `scripts/setup.sh` does
that for pip users, `colcon build` does it in a ROS 2 workspace.
"""
from setuptools import find_packages, setup

NODES = {
    "diffuser_planner": "diffuser_ros.planner_node:main",
    "maze2d_sim": "diffuser_ros.maze2d_sim_node:main",
    "kuka_sim": "diffuser_ros.kuka_sim_node:main",
    "diffdrive_sim": "diffuser_ros.diffdrive_sim_node:main",
    "diffdrive_expert": "diffuser_ros.diffdrive_expert_node:main",
    "bringup": "diffuser_ros.bringup:main",
    "send_goal": "diffuser_ros.send_goal:main",
    "send_stack_goal": "diffuser_ros.send_stack_goal:main",
}

setup(
    name="diffuser_ros",
    version="0.1.0",
    description="Diffuser (planning with diffusion) as ROS 2 control nodes",
    license="MIT",
    python_requires="==3.11.*",
    packages=find_packages(include=["diffuser_core", "diffuser_core.*", "diffuser_ros", "diffuser_ros.*"]),
    entry_points={
        "console_scripts": [f"{name}={target}" for name, target in NODES.items()]
        + ["diffuser-ros=diffuser_ros.cli:main"],
    },
)
