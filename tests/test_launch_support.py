"""The launch descriptions, built with small stand-ins for `launch`/`launch_ros` (not on PyPI; this
checks what the description asks for, not ROS 2 launch itself): every node of the scenario YAML is
started with its executable, that YAML as parameters, and `autostart` only for managed nodes."""
import runpy
import sys
import types
from pathlib import Path

import pytest

from diffuser_core.scenario import EXECUTABLES, MANAGED, load_scenario

ROOT = Path(__file__).resolve().parents[1]


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class Configuration(Recorded):
    values = {}

    def perform(self, context):
        return self.values[self.args[0]]


@pytest.fixture
def stand_ins(monkeypatch):
    modules = {
        "ament_index_python": types.ModuleType("ament_index_python"),
        "ament_index_python.packages": types.SimpleNamespace(get_package_share_directory=lambda name: str(ROOT)),
        "launch": types.SimpleNamespace(LaunchDescription=lambda actions: actions),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=Recorded, OpaqueFunction=Recorded),
        "launch.conditions": types.SimpleNamespace(IfCondition=Recorded),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=Configuration),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.SimpleNamespace(Node=Recorded),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return Configuration


@pytest.mark.parametrize("launch_file, scenario", [("maze2d.launch.py", "maze2d_umaze"), ("kuka.launch.py", "kuka_stack")])
@pytest.mark.parametrize("autostart", ["true", "false"])
def test_launch_file_starts_every_scenario_node_with_its_yaml(stand_ins, launch_file, scenario, autostart):
    actions = runpy.run_path(str(ROOT / "launch" / launch_file))["generate_launch_description"]()
    arguments = {a.args[0]: a.kwargs["default_value"] for a in actions if "default_value" in a.kwargs}
    assert arguments["scenario"] == scenario and arguments["autostart"] == "true"
    assert {"namespace", "use_sim_time", "params_file"} <= set(arguments)
    stand_ins.values = {"scenario": scenario, "autostart": autostart, "namespace": "", "use_sim_time": "false",
                        "params_file": ""}
    opaque = next(a for a in actions if "function" in a.kwargs)
    nodes = opaque.kwargs["function"](context=None)
    config = ROOT / "config" / f"{scenario}.yaml"
    specs = {spec.name: spec for spec in load_scenario(config)}
    assert [n.kwargs["name"] for n in nodes] == list(specs)
    for node in nodes:
        assert node.kwargs["executable"] in EXECUTABLES and node.kwargs["namespace"] == ""
        assert node.kwargs["parameters"][0] == {**specs[node.kwargs["name"]].parameters, "use_sim_time": False}
        extra = node.kwargs["parameters"][1:]
        assert extra == ([{"autostart": autostart == "true"}] if node.kwargs["executable"] in MANAGED else [])


def test_launch_arguments_namespace_sim_time_and_params_file(stand_ins, tmp_path):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("diffuser_planner:\n  ros__parameters:\n    replan_rate: 5.0\n"
                         "/**:\n  ros__parameters:\n    frame_id: odom\n")
    actions = runpy.run_path(str(ROOT / "launch" / "maze2d.launch.py"))["generate_launch_description"]()
    stand_ins.values = {"scenario": "maze2d_medium", "autostart": "true", "namespace": "robot1",
                        "use_sim_time": "true", "params_file": str(overrides)}
    nodes = next(a for a in actions if "function" in a.kwargs).kwargs["function"](context=None)
    by_name = {node.kwargs["name"]: node.kwargs for node in nodes}
    assert all(kwargs["namespace"] == "robot1" for kwargs in by_name.values())
    planner, sim = by_name["diffuser_planner"]["parameters"][0], by_name["maze2d_sim"]["parameters"][0]
    assert planner["replan_rate"] == 5.0 and planner["use_sim_time"]
    assert sim["publish_clock"] and not sim["use_sim_time"]  # the simulator is the clock
    assert planner["frame_id"] == sim["frame_id"] == "odom"
    assert planner["checkpoint"] == load_scenario(ROOT / "config" / "maze2d_medium.yaml")[1].parameters["checkpoint"]
