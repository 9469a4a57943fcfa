"""Launch descriptions for `ros2 launch` (full ROS 2 installs): one per scenario YAML, the same file
`bringup` reads. `launch` and `launch_ros` are imported here only, so the rest of the package works
from pip installs without them."""
from __future__ import annotations

from pathlib import Path

from diffuser_core.scenario import MANAGED, load_overrides, load_scenario, merged_parameters


def scenario_launch_description(default_scenario: str, rviz_config: str | None = None):
    """Arguments `scenario` (config/<scenario>.yaml), `autostart` (managed nodes configure and
    activate themselves), `namespace` (every node in it: two robots side by side), `use_sim_time`,
    `params_file` (overrides merged onto the scenario's parameters) and, with an RViz config, `rviz`;
    one Node per node of the scenario, its parameters given as values (so they apply in any
    namespace)."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    share = Path(get_package_share_directory("diffuser_ros"))

    def scenario_nodes(context):
        config = share / "config" / f"{LaunchConfiguration('scenario').perform(context)}.yaml"
        autostart = {"autostart": LaunchConfiguration("autostart").perform(context) == "true"}
        params_file = LaunchConfiguration("params_file").perform(context)
        use_sim_time = LaunchConfiguration("use_sim_time").perform(context) == "true"
        nodes = load_scenario(config)
        parameters = merged_parameters(nodes, load_overrides(params_file), use_sim_time)
        namespace = LaunchConfiguration("namespace").perform(context)
        return [Node(package="diffuser_ros", executable=spec.executable, name=spec.name, namespace=namespace,
                     parameters=[parameters[spec.name], *([autostart] if spec.executable in MANAGED else [])],
                     output="screen", emulate_tty=True)
                for spec in nodes]

    actions = [
        DeclareLaunchArgument("scenario", default_value=default_scenario, description="config/<scenario>.yaml"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure + activate the managed planner on start (nav2-style)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node (e.g. robot1)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="nodes read time from /clock (set the simulator's publish_clock)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="ros__parameters YAML of overrides merged onto the scenario's"),
        OpaqueFunction(function=scenario_nodes),
    ]
    if rviz_config:
        actions += [
            DeclareLaunchArgument("rviz", default_value="false", description=f"start RViz with rviz/{rviz_config}"),
            Node(package="rviz2", executable="rviz2", arguments=["-d", str(share / "rviz" / rviz_config)],
                 condition=IfCondition(LaunchConfiguration("rviz"))),
        ]
    return LaunchDescription(actions)
