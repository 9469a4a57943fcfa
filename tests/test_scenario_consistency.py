"""One scenario file is the single source of a robot setting: the core settings' defaults (the
loop's, the planner's, the map's) and the planner nodes' parameter tables are the default scenario's
values, every planner scenario sets every parameter, and the offline evaluation of a scenario
(`bench/eval_maze2d.py --scenario`, `bench/eval_kuka.py --scenario`) runs exactly the settings its YAML
ships; each shipped checkpoint names the experiment and training steps that made it."""
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planning.loading import PlanningSettings
from diffuser_core.planning.receding import LoopSettings
from diffuser_core.scenario import load_scenario, planner_parameters
from diffuser_core.settings import defaults

ROOT = Path(__file__).resolve().parents[1]
MAZE_SCENARIOS = ("maze2d_umaze", "maze2d_medium", "maze2d_large")
NOT_DEFAULTS = {"autostart"}  # a bare node waits to be configured; scenarios start theirs


def same(a, b) -> bool:
    """Equal values, a YAML list and a tuple default alike."""
    as_tuple = lambda value: tuple(value) if isinstance(value, (list, tuple)) else value
    return as_tuple(a) == as_tuple(b)


def node_parameters(scenario: str) -> dict:
    """The parameter table (name -> default) of the node a scenario's planner runs."""
    if scenario.startswith("kuka"):
        from diffuser_ros.arm_planner_node import PARAMETERS
    else:
        from diffuser_ros.planner_parameters import PARAMETERS
    return PARAMETERS


@pytest.mark.parametrize("settings", [LoopSettings, PlanningSettings, AvoidanceSettings], ids=lambda c: c.__name__)
def test_core_settings_defaults_are_the_default_scenarios_values(settings):
    shipped = planner_parameters("maze2d_umaze")
    differing = {name: (value, shipped.get(name)) for name, value in defaults(settings).items()
                 if shipped.get(name) != value}
    assert not differing, f"{settings.__name__} defaults differ from config/maze2d_umaze.yaml: {differing}"


@pytest.mark.parametrize("scenario", ["maze2d_umaze", "kuka_stack"])
def test_node_defaults_are_the_shipped_scenario(scenario):
    shipped = planner_parameters(scenario)
    differing = {name: (value, shipped.get(name)) for name, value in node_parameters(scenario).items()
                 if name not in NOT_DEFAULTS and not same(shipped.get(name), value)}
    assert not differing, f"the planner's defaults differ from config/{scenario}.yaml: {differing}"


@pytest.mark.parametrize("scenario", [*MAZE_SCENARIOS, "diffdrive_room", "kuka_stack"])
def test_planner_scenarios_set_every_parameter_and_no_other(scenario):
    table, shipped = set(node_parameters(scenario)), set(planner_parameters(scenario))
    assert not table - shipped, f"config/{scenario}.yaml leaves {sorted(table - shipped)} to the node's defaults"
    assert not shipped - table, f"config/{scenario}.yaml sets {sorted(shipped - table)}, which the node does not have"


@pytest.mark.parametrize("scenario", MAZE_SCENARIOS)
def test_scenario_evaluation_runs_the_shipped_settings(scenario):
    sys.path.insert(0, str(ROOT))
    from argparse import Namespace

    from bench.eval_maze2d import scenario_eval_config

    p = planner_parameters(scenario)
    config, checkpoint = scenario_eval_config(scenario, Namespace(episodes=3, seed=0, multi=False,
                                                                  episode_steps=None, device="cpu"))
    assert Path(checkpoint).resolve() == (ROOT / p["checkpoint"]).resolve()
    assert (config.maze, config.sampler, config.denoising_steps or 0, config.warm_start) == (
        p["maze"], p["sampler"], p["denoising_steps"], p["warm_start"])
    assert config.warm_start_steps == p["warm_start_steps"] and (config.horizon or 0) == p["horizon"]
    assert config.backend == p["backend"]
    assert config.segments == p["segments"] and (config.low_level or "") == (p["low_level_checkpoint"] and
                                                                            str(ROOT / p["low_level_checkpoint"]))
    for settings in (config.loop, config.avoidance):
        shipped = {name: p[name] for name in defaults(type(settings))}
        assert {name: value for name, value in asdict(settings).items() if name in shipped} == shipped


def test_kuka_scenario_evaluation_runs_the_shipped_settings():
    sys.path.insert(0, str(ROOT))
    from argparse import Namespace

    from bench.eval_kuka import scenario_configs

    p = planner_parameters("kuka_stack")
    args = Namespace(scenario="kuka_stack", modes=["conditional", "rearrange"], episodes=3, seed=0,
                     reference_grasp=False, world="project", device="cpu")
    configs, checkpoint = scenario_configs(args)
    assert Path(checkpoint).resolve() == (ROOT / p["checkpoint"]).resolve()
    assert [config.mode for config in configs] == ["conditional", "rearrange"]
    for config in configs:
        assert (config.sampler, config.denoising_steps or 0, config.guide_scale, config.n_guide_steps) == (
            p["sampler"], p["denoising_steps"], p["guide_scale"], p["n_guide_steps"])
        stages = config.stage_settings()
        assert (stages.grasp_guide, stages.keep_built, stages.refine, stages.grip_threshold, stages.replan_every,
                stages.stages, stages.stop_when_done, stages.samples) == (
            p["grasp_guide"], p["keep_built"], p["refine"], p["grip_threshold"], p["replan_every"], p["max_stages"], True,
            p["samples"])


def shipped_checkpoints() -> dict:
    """Every checkpoint a scenario ships, with the scenario that ships it."""
    shipped = {}
    for path in sorted((ROOT / "config").glob("*.yaml")):
        for spec in load_scenario(path):
            for name in ("checkpoint", "low_level_checkpoint"):
                if spec.parameters.get(name):
                    shipped[spec.parameters[name]] = path.stem
    return shipped


@pytest.mark.parametrize("checkpoint", sorted(shipped_checkpoints()))
def test_an_experiment_states_the_training_steps_of_each_shipped_checkpoint(checkpoint):
    from diffuser_core.checkpoint import read_checkpoint
    from diffuser_core.config import ExperimentConfig

    experiments = [ExperimentConfig.from_file(path) for path in sorted((ROOT / "experiments").glob("*.yaml"))]
    makers = [experiment for experiment in experiments if experiment.shipped.checkpoint == checkpoint]
    assert len(makers) == 1, f"{checkpoint} (shipped by config/{shipped_checkpoints()[checkpoint]}.yaml) " \
                             f"needs exactly one experiments/*.yaml naming it under shipped:"
    _, _, saved = read_checkpoint(ROOT / checkpoint)
    assert (saved.step, saved.env) == (makers[0].shipped.steps, makers[0].env)


def test_diffdrive_evaluation_runs_the_shipped_settings():
    sys.path.insert(0, str(ROOT))
    from argparse import Namespace

    from bench.eval_diffdrive import scenario_eval_config

    p = planner_parameters("diffdrive_room")
    config, checkpoint = scenario_eval_config("diffdrive_room", Namespace(episodes=3, seed=0, time_limit=60.0))
    assert Path(checkpoint).resolve() == (ROOT / p["checkpoint"]).resolve()
    assert (config.layout, config.control_rate, list(config.limits)) == (p["maze"], p["control_rate"], p["command_limits"])
    assert config.goal_dims == (0, 1) and config.loop.plan_dt == p["plan_dt"]
    assert (config.planning.denoising_steps, config.avoidance.candidates) == (p["denoising_steps"], p["candidates"])
