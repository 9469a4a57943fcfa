"""Maze2D scenario: the point-mass simulator and the Diffuser planner, optionally with RViz.

    ros2 launch diffuser_ros maze2d.launch.py                      # U-Maze
    ros2 launch diffuser_ros maze2d.launch.py scenario:=maze2d_large rviz:=true
    ros2 launch diffuser_ros maze2d.launch.py autostart:=false      # step the planner's lifecycle yourself

The nodes and their parameters come from config/<scenario>.yaml, the same file `bringup` reads.
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from diffuser_ros.scenario import MANAGED, load_scenario

SHARE = Path(get_package_share_directory("diffuser_ros"))


def scenario_nodes(context):
    """One Node action per node named in the scenario YAML; managed nodes get the `autostart` argument."""
    config = SHARE / "config" / f"{LaunchConfiguration('scenario').perform(context)}.yaml"
    autostart = {"autostart": LaunchConfiguration("autostart").perform(context) == "true"}
    return [Node(package="diffuser_ros", executable=spec.executable, name=spec.name,
                 parameters=[str(config), *([autostart] if spec.executable in MANAGED else [])],
                 output="screen", emulate_tty=True)
            for spec in load_scenario(config)]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("scenario", default_value="maze2d_umaze",
                              description="config/<scenario>.yaml: maze2d_umaze | maze2d_medium | maze2d_large"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with rviz/maze2d.rviz"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure + activate the managed planner on start (nav2-style)"),
        OpaqueFunction(function=scenario_nodes),
        Node(package="rviz2", executable="rviz2", arguments=["-d", str(SHARE / "rviz" / "maze2d.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
