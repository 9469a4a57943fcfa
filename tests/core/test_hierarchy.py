"""Hierarchical planning: strided windows, segment filling, the hierarchical planner, checkpoints."""
from dataclasses import replace

import numpy as np
import pytest

from diffuser_core.checkpoint import save_checkpoint
from diffuser_core.data.datasets import Episode, SequenceDataset, fit_normalizer
from diffuser_core.planning.hierarchy import DiffuserSegments, HermiteSegments, HierarchicalPlanner, LinearSegments
from diffuser_core.planning.loading import checkpoint_stride, load_planner
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.training.trainer import Trainer

from .toy import HORIZON, checkpoint_config, line_episodes, quick_training, straight_line, tiny_diffusion

START, GOAL = np.array([1.0, -2.0], dtype=np.float32), np.array([-1.5, 2.5], dtype=np.float32)


def counting_episode(length):
    """Observation x = the step index, so a window's rows name the steps they came from."""
    steps = np.arange(length, dtype=np.float32)[:, None]
    return Episode(np.hstack([steps, steps * 0]), np.zeros((length, 1)), np.zeros(length))


def test_strided_windows_are_every_kth_state():
    episodes = [counting_episode(20), counting_episode(9)]
    dataset = SequenceDataset(episodes, 4, fit_normalizer(episodes), stride=3)
    assert dataset.span == 10 and len(dataset) == 20 - 10 + 1  # the 9-step episode is too short
    for index in (0, 5, len(dataset) - 1):
        episode, start = dataset.windows[index]
        rows = dataset.normalizer.unnormalize(dataset[index]["trajectories"].numpy())
        assert np.allclose(rows[:, 1], start + 3 * np.arange(4), atol=1e-4)


def test_strided_edge_padding_repeats_the_last_state():
    episodes = [counting_episode(8)]
    dataset = SequenceDataset(episodes, 3, fit_normalizer(episodes), padding="edge", stride=3)
    assert len(dataset) == 8
    rows = dataset.normalizer.unnormalize(dataset[6]["trajectories"].numpy())
    assert np.allclose(rows[:, 1], [6, 7, 7], atol=1e-4)
    with pytest.raises(ValueError, match="stride"):
        SequenceDataset(episodes, 3, dataset.normalizer, stride=0)


def point_mass_subgoals(rng, count=5):
    """Random (x, y, vx, vy) subgoals."""
    return rng.normal(size=(count, 4)).astype(np.float32)


@pytest.mark.parametrize("filler", [LinearSegments(), HermiteSegments((0, 1), (2, 3), 0.01)])
def test_segments_end_exactly_on_the_subgoals(filler):
    subgoals = point_mass_subgoals(np.random.default_rng(0))
    actions = np.arange(10, dtype=np.float32).reshape(5, 2)
    observations, dense_actions, calls = filler.densify(subgoals, actions, 15)
    assert observations.shape == (4 * 15 + 1, 4) and dense_actions.shape == (61, 2) and calls == 0
    assert np.array_equal(observations[::15], subgoals)
    assert np.array_equal(dense_actions[::15], actions)


def test_hermite_segments_are_continuous_and_their_velocities_are_the_derivative():
    dt, stride = 0.01, 15
    subgoals = point_mass_subgoals(np.random.default_rng(1), count=3)
    observations, _, _ = HermiteSegments((0, 1), (2, 3), dt).densify(subgoals, np.zeros((3, 2)), stride)
    finite_difference = np.diff(observations[:, :2], axis=0) / dt
    midpoint_velocity = 0.5 * (observations[1:, 2:] + observations[:-1, 2:])
    scale = np.abs(finite_difference).max()
    assert np.abs(finite_difference - midpoint_velocity).max() < 0.02 * scale
    # constant-velocity motion is reproduced exactly
    line = np.array([[0, 0, 1, 2], [0.15, 0.3, 1, 2]], dtype=np.float32)
    dense, _, _ = HermiteSegments((0, 1), (2, 3), dt).densify(line, np.zeros((2, 2)), stride)
    assert np.allclose(dense[:, 0], np.arange(16) * 0.01, atol=1e-6)
    assert np.allclose(dense[:, 2:], [1, 2], atol=1e-5)


def hierarchical(model, normalizer, stride=3, **settings):
    settings.setdefault("horizon", HORIZON)
    settings.setdefault("seed", 0)
    return HierarchicalPlanner(Planner(model, normalizer, PlannerConfig(**settings)), stride)


def test_hierarchical_plan_is_dense_and_passes_its_subgoals(trained_toy, toy_normalizer):
    planner = hierarchical(trained_toy[0].ema.model, toy_normalizer, sampler="ddim", denoising_steps=4)
    plan = planner.plan(START, goal=GOAL)
    assert planner.horizon == (HORIZON - 1) * 3 + 1 == plan.observations.shape[0]
    assert plan.subgoals.shape == (HORIZON, 2)
    assert np.array_equal(plan.observations[::3], plan.subgoals)
    assert np.array_equal(plan.observations[0], START) and np.array_equal(plan.observations[-1], GOAL)
    shorter = planner.plan(START, goal=GOAL, horizon=10)  # 10 env steps: 4 subgoals (the U-Net's multiple)
    assert shorter.subgoals.shape[0] == 4 and shorter.observations.shape[0] == 10


def test_low_level_diffuser_fills_all_segments_in_one_batch(trained_toy, toy_normalizer):
    model = trained_toy[0].ema.model
    low = Planner(model, toy_normalizer, PlannerConfig(sampler="ddim", denoising_steps=4, horizon=HORIZON, seed=0))
    planner = HierarchicalPlanner(Planner(model, toy_normalizer, PlannerConfig(horizon=HORIZON, seed=0,
                                                                               sampler="ddim", denoising_steps=4)),
                                  HORIZON - 1, DiffuserSegments(low))
    plan = planner.plan(START, goal=GOAL)
    assert plan.observations.shape == ((HORIZON - 1) ** 2 + 1, 2)
    assert np.array_equal(plan.observations[::HORIZON - 1], plan.subgoals)
    assert plan.denoising_steps == 4 + 4  # one batched low-level pass for all segments
    assert np.all(np.isfinite(plan.observations)) and np.all(np.isfinite(plan.actions))
    with pytest.raises(ValueError, match="must plan 4 states"):
        DiffuserSegments(low).densify(plan.subgoals, plan.actions[:HORIZON], 3)


def strided_line_error(model, normalizer, stride):
    """Mean distance of a hierarchical plan's subgoals from the straight line they should follow."""
    planner = HierarchicalPlanner(Planner(model, normalizer, PlannerConfig(horizon=HORIZON, seed=0)), stride)
    errors = []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        start, goal = rng.uniform(-2, 2, 2).astype(np.float32), rng.uniform(-2, 2, 2).astype(np.float32)
        plan = planner.plan(start, goal=goal)
        errors.append(np.abs(plan.subgoals - straight_line(start, goal, HORIZON)[0]).mean())
    return float(np.mean(errors))


def test_a_briefly_trained_high_level_model_beats_the_untrained_one(tmp_path):
    stride = 3
    episodes = line_episodes(count=128, length=(HORIZON - 1) * stride + 1, seed=3)
    normalizer = fit_normalizer(episodes)
    dataset = SequenceDataset(episodes, HORIZON, normalizer, stride=stride)
    untrained, model = tiny_diffusion(seed=1), tiny_diffusion(seed=1)
    trainer = Trainer(model, dataset, quick_training(steps=300), replace(checkpoint_config(), stride=stride),
                      normalizer, tmp_path)
    trainer.train()
    trained_error = strided_line_error(trainer.ema.model, normalizer, stride)
    assert trained_error < 0.5 * strided_line_error(untrained.eval(), normalizer, stride)
    path = trainer.save()
    assert checkpoint_stride(path) == stride
    assert isinstance(load_planner(path), HierarchicalPlanner)


def test_hierarchical_checkpoint_round_trips(trained_toy, toy_normalizer, tmp_path):
    model = trained_toy[0].ema.model
    path = save_checkpoint(tmp_path / "high.safetensors", model, toy_normalizer,
                           replace(checkpoint_config(), stride=5))
    planner = load_planner(path, PlannerConfig(seed=0, sampler="ddim", denoising_steps=4))
    assert isinstance(planner, HierarchicalPlanner) and planner.stride == 5
    direct = Planner(model, toy_normalizer, PlannerConfig(seed=0, sampler="ddim", denoising_steps=4,
                                                          horizon=HORIZON))
    assert np.allclose(planner.plan(START, goal=GOAL).subgoals, direct.plan(START, goal=GOAL).observations,
                       atol=1e-5)
    dense = load_planner(path, PlannerConfig(seed=0, horizon=12))  # env steps: 3 subgoals cover 11, 4 is the multiple
    assert dense.high_level.horizon == 4 and dense.horizon == 16
    flat = save_checkpoint(tmp_path / "flat.safetensors", model, toy_normalizer, checkpoint_config())
    assert isinstance(load_planner(flat), Planner) and checkpoint_stride(flat) == 1
    with_low_level = load_planner(path, low_level=flat)  # the flat model, run at horizon stride + 1
    assert isinstance(with_low_level.segments, DiffuserSegments)
    plan = with_low_level.plan(START, goal=GOAL)
    assert np.array_equal(plan.observations[::5], plan.subgoals)
    with pytest.raises(ValueError, match="flat model"):
        load_planner(flat, low_level=flat)
