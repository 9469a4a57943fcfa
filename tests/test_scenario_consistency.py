"""One scenario file is the single source of truth: the planners' parameter defaults are the shipped
scenarios' values, every planner scenario sets every parameter, and the offline evaluation of a
scenario (`bench/eval_maze2d.py --scenario`, `bench/eval_kuka.py --scenario`) runs exactly the settings its
YAML ships; each shipped checkpoint names the experiment and training steps that made it."""
import ast
import sys
from pathlib import Path

import pytest

from diffuser_ros.scenario import load_scenario, planner_parameters

ROOT = Path(__file__).resolve().parents[1]
MAZE_SCENARIOS = ("maze2d_umaze", "maze2d_medium", "maze2d_large")
NOT_DEFAULTS = {"autostart"}  # a bare node waits to be configured; scenarios start theirs


def parameter_defaults(module: str) -> dict:
    """A node module's PARAMETERS table, read without importing ROS."""
    tree = ast.parse((ROOT / module).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PARAMETERS":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module} has no PARAMETERS table")


@pytest.mark.parametrize("module, scenario", [("diffuser_ros/planner_node.py", "maze2d_umaze"),
                                              ("diffuser_ros/arm_planner_node.py", "kuka_stack")])
def test_node_defaults_are_the_shipped_scenario(module, scenario):
    defaults, shipped = parameter_defaults(module), planner_parameters(scenario)
    differing = {name: (value, shipped.get(name)) for name, value in defaults.items()
                 if name not in NOT_DEFAULTS and shipped.get(name) != value}
    assert not differing, f"{module} defaults differ from config/{scenario}.yaml: {differing}"


@pytest.mark.parametrize("scenario", [*MAZE_SCENARIOS, "kuka_stack"])
def test_planner_scenarios_set_every_parameter(scenario):
    module = "diffuser_ros/arm_planner_node.py" if scenario.startswith("kuka") else "diffuser_ros/planner_node.py"
    missing = set(parameter_defaults(module)) - set(planner_parameters(scenario))
    assert not missing, f"config/{scenario}.yaml leaves {sorted(missing)} to the node's defaults"


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
    assert config.warm_start_steps == (p["warm_start_steps"] or 8) and (config.horizon or 0) == p["horizon"]
    assert (config.replan_rate, config.goal_tolerance) == (p["replan_rate"], p["goal_tolerance"])
    assert config.segments == p["segments"] and (config.low_level or "") == (p["low_level_checkpoint"] and
                                                                            str(ROOT / p["low_level_checkpoint"]))
    assert (config.costmap_weight, config.candidates, config.costmap_margin, config.route_reach,
            config.route_horizon, config.costmap_shield) == (p["costmap_weight"], p["candidates"], p["costmap_margin"],
                                                             p["route_reach"], p["route_horizon"], p["costmap_shield"])
    replan = config.replan
    assert (replan.replan_deviation, replan.settle_distance, replan.max_plan_age, replan.plan_dt,
            replan.shrink_horizon) == (p["replan_deviation"], p["settle_distance"], p["max_plan_age"],
                                       p["plan_dt"], p["shrink_horizon"])


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
                stages.stages, stages.stop_when_done) == (p["grasp_guide"], p["keep_built"], p["refine"],
                                                          p["grip_threshold"], p["replan_every"], p["max_stages"], True)


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
