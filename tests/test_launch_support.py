"""The launch descriptions, built with small stand-ins for `launch`/`launch_ros` (not on PyPI; this
checks what the description asks for, not ROS 2 launch itself): every node of the scenario YAML is
started with its executable, that YAML as parameters, and `autostart` only for managed nodes."""
import runpy
import sys
import types
from pathlib import Path

import pytest

from diffuser_ros.scenario import EXECUTABLES, MANAGED, load_scenario

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
    stand_ins.values = {"scenario": scenario, "autostart": autostart}
    opaque = next(a for a in actions if "function" in a.kwargs)
    nodes = opaque.kwargs["function"](context=None)
    config = ROOT / "config" / f"{scenario}.yaml"
    assert [n.kwargs["name"] for n in nodes] == [spec.name for spec in load_scenario(config)]
    for node in nodes:
        assert node.kwargs["executable"] in EXECUTABLES and node.kwargs["parameters"][0] == str(config)
        extra = node.kwargs["parameters"][1:]
        assert extra == ([{"autostart": autostart == "true"}] if node.kwargs["executable"] in MANAGED else [])
