"""Launch files compile and name real executables and configs; every scenario YAML is well formed and
sets only parameters its node declares (a typo there would be silently ignored by ROS)."""
import ast
import importlib
import py_compile
from pathlib import Path

import pytest
import yaml

from diffuser_core.scenario import EXECUTABLES, ScenarioError, load_scenario, resolve_config

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def declared_parameters(executable: str, parameters: dict | None = None) -> set[str]:
    """Parameter names a node declares: its module's PARAMETERS table. `diffuser_planner` with
    `robot: kuka_arm` is the arm planner, with its own table."""
    module = EXECUTABLES[executable]
    if executable == "diffuser_planner" and (parameters or {}).get("robot") == "kuka_arm":
        module = "diffuser_ros.arm_planner_node"
    return set(importlib.import_module(module).PARAMETERS)


def test_there_are_launch_files_and_configs():
    assert LAUNCH_FILES and CONFIGS


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_compiles_and_names_real_things(launch_file, tmp_path):
    py_compile.compile(str(launch_file), cfile=str(tmp_path / "out.pyc"), doraise=True)
    tree = ast.parse(launch_file.read_text())
    executables = {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                   for kw in node.keywords if kw.arg == "executable" and isinstance(kw.value, ast.Constant)}
    assert executables <= set(EXECUTABLES) | {"rviz2"}, executables
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    scenarios = [s for s in strings if s.startswith("maze2d_") or s.startswith("kuka")]
    assert scenarios, "the launch file names no default scenario"
    for scenario in scenarios:
        assert (ROOT / "config" / f"{scenario}.yaml").is_file(), f"{launch_file.name} names missing config {scenario}"
    for rviz in (s for s in strings if s.endswith(".rviz") and " " not in s):
        assert (ROOT / "rviz" / Path(rviz).name).is_file(), f"{launch_file.name} names missing {rviz}"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_scenario_sets_only_declared_parameters(config):
    specs = load_scenario(config)
    assert specs
    for spec in specs:
        unknown = set(spec.parameters) - declared_parameters(spec.executable, spec.parameters)
        assert not unknown, f"{config.name}: {spec.name} does not declare {sorted(unknown)}"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_scenario_checkpoints_are_shipped(config):
    for spec in load_scenario(config):
        checkpoint = spec.parameters.get("checkpoint")
        if checkpoint:
            assert (ROOT / checkpoint).is_file(), f"{config.name} names {checkpoint}, which is not in the repo"


def test_bad_scenarios_are_refused_with_reasons(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"not_a_node": {"ros__parameters": {}}}))
    with pytest.raises(ScenarioError, match="not a node of this package"):
        load_scenario(bad)
    bad.write_text("maze2d_sim: [1, 2]")
    with pytest.raises(ScenarioError, match="ros__parameters"):
        load_scenario(bad)
    bad.write_text("{unclosed")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="available: .*maze2d_umaze"):
        resolve_config("no_such_scenario")
