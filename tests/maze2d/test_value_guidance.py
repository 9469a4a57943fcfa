"""Learned value guidance end to end on U-Maze: the shipped value model steers plans that are given no
goal to D4RL's goal, through the planner and through the evaluation; a value model of another
diffusion schedule is refused."""
from pathlib import Path

import numpy as np
import pytest

from diffuser_core.checkpoint import CheckpointError, load_value_guide
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, evaluate
from diffuser_core.tasks.maze2d.layouts import GOAL_RADIUS

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "checkpoints" / "maze2d_umaze.safetensors"
VALUE = ROOT / "checkpoints" / "maze2d_umaze_value.safetensors"
GOAL_XY = np.array(Maze2DEnv.cell_to_xy((1, 1)))  # U-Maze's D4RL goal, whose reward the value model learned


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/maze2d/conftest.py


def closest_approaches(planner: Planner, guides, seeds=range(4)) -> np.ndarray:
    """How near each plan from the U-Maze's far end comes to the goal (start inpainted, no goal)."""
    start = np.array([*Maze2DEnv.cell_to_xy((3, 1)), 0.0, 0.0])
    distances = []
    for seed in seeds:
        planner.reset()
        planner.generator.manual_seed(seed)
        plan = planner.plan(start, guides=guides).observations
        distances.append(np.linalg.norm(plan[:, :2] - GOAL_XY, axis=1).min())
    return np.array(distances)


def test_the_value_guide_draws_plans_without_a_goal_to_the_goal():
    planner = Planner.from_checkpoint(MODEL, PlannerConfig(sampler="ddim", denoising_steps=16, guide_scale=300.0))
    guide = load_value_guide(VALUE, planner.normalizer, planner.diffusion.n_timesteps)
    unguided, guided = closest_approaches(planner, None), closest_approaches(planner, [guide])
    assert np.all(guided < GOAL_RADIUS), guided  # measured: 0.15-0.44 m
    assert np.median(unguided) > 1.0, unguided  # measured: 1.68-1.95 m


def test_the_evaluation_plans_from_the_start_alone_with_the_value_guide():
    config = Maze2DEvalConfig(episodes=1, seed=3, sampler="ddim", denoising_steps=4, episode_steps=10,
                              goal_inpainting=False, value_checkpoint=str(VALUE), guide_scale=300.0)
    episode = evaluate(MODEL, config, progress=False).episodes[0]
    np.testing.assert_allclose(episode.first_plan[0], episode.start, atol=1e-6)  # the start is inpainted
    assert np.abs(episode.first_plan[-1] - [1.0, 1.0, 0.0, 0.0]).max() > 1e-3  # the goal is not


def test_a_value_model_of_another_diffusion_schedule_is_refused():
    planner = Planner.from_checkpoint(MODEL, PlannerConfig(sampler="ddim", denoising_steps=4))
    with pytest.raises(CheckpointError, match="diffusion steps"):
        load_value_guide(VALUE, planner.normalizer, planner.diffusion.n_timesteps + 1)
