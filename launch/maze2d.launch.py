"""Maze2D scenario: the point-mass simulator and the Diffuser planner, optionally with RViz.

    ros2 launch diffuser_ros maze2d.launch.py                      # U-Maze
    ros2 launch diffuser_ros maze2d.launch.py scenario:=maze2d_large rviz:=true
    ros2 launch diffuser_ros maze2d.launch.py autostart:=false      # step the planner's lifecycle yourself

The nodes and their parameters come from config/<scenario>.yaml, the same file `bringup` reads.
"""
from diffuser_ros.launch_support import scenario_launch_description


def generate_launch_description():
    return scenario_launch_description("maze2d_umaze", rviz_config="maze2d.rviz")
