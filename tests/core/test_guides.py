"""Guided sampling: mu + alpha Sigma grad J(mu) moves plans towards higher J."""
import numpy as np
import pytest
import torch

from diffuser_core.config import ValueConfig
from diffuser_core.data.datasets import ValueDataset
from diffuser_core.guidance.guides import CompositeGuide, CostGuide, GoalDistanceGuide, ValueGuide, combine_guides
from diffuser_core.model.value import ValueModel, ValueObjective
from diffuser_core.sampling.conditioning import Constraint, Inpainting
from diffuser_core.sampling.samplers import DDIMSampler, DDPMSampler, GuidanceConfig, guided_mean

from .toy import ACT_DIM, HORIZON, OBS_DIM, line_episodes

D = ACT_DIM + OBS_DIM


def final_x(x, t):
    return x[:, -1, ACT_DIM]


def start_only():
    return Inpainting.from_constraints([Constraint(0, (0, 1), (0.0, 0.0))], HORIZON, ACT_DIM, OBS_DIM)


def sample_final_x(diffusion, sampler, guide, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(16, HORIZON, D, generator=generator)
    out = sampler.sample(diffusion, x, start_only(), guide=guide, generator=generator,
                         guidance=GuidanceConfig(scale=scale, n_guide_steps=2))
    return out.trajectories[:, -1, ACT_DIM]


@pytest.mark.parametrize("sampler", [DDPMSampler(), DDIMSampler(steps=5)])
def test_cost_guidance_moves_samples_in_the_cost_direction(trained_toy, sampler):
    diffusion = trained_toy[0].ema.model
    free = sample_final_x(diffusion, sampler, None)
    lowered = sample_final_x(diffusion, sampler, CostGuide(final_x), scale=3.0)  # minimise final x
    raised = sample_final_x(diffusion, sampler, CostGuide(final_x, weight=-1.0), scale=3.0)
    assert lowered.mean() < free.mean() - 0.3
    assert raised.mean() > free.mean() + 0.05
    assert torch.equal(free, sample_final_x(diffusion, sampler, None))  # same seed, same plans


def test_t_stopgrad_above_every_step_disables_guidance(trained_toy):
    diffusion, sampler = trained_toy[0].ema.model, DDPMSampler()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, HORIZON, D, generator=generator)
    plain = sampler.sample(diffusion, x, start_only(), generator=torch.Generator().manual_seed(1))
    stopped = sampler.sample(diffusion, x, start_only(), guide=CostGuide(final_x),
                             guidance=GuidanceConfig(scale=1.0, t_stopgrad=10),
                             generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain.trajectories, stopped.trajectories)


def test_the_reference_rule_steps_once_along_the_gradient_at_the_noisy_sample_times_sigma():
    """gradient_at "input": mu + alpha sigma grad J(x_t), as the reference's Kuka evaluation guides; the
    default: mu + alpha Sigma grad J(mu), n_guide_steps times."""
    guide = CostGuide(lambda x, t: 0.5 * x[:, -1, ACT_DIM] ** 2)  # grad J = -x at that entry
    mean, x_t = torch.full((1, HORIZON, D), 2.0), torch.full((1, HORIZON, D), 5.0)
    t, variance, free = torch.zeros(1, dtype=torch.long), 0.25, Inpainting.from_constraints([], HORIZON, ACT_DIM, OBS_DIM)
    at_input = guided_mean(mean, variance, t, guide, GuidanceConfig(0.7, 3, gradient_at="input"), free, x_t)
    assert at_input[0, -1, ACT_DIM].item() == pytest.approx(2.0 - 0.7 * 0.5 * 5.0)
    at_mean = guided_mean(mean, variance, t, guide, GuidanceConfig(0.7, 1), free, x_t)
    assert at_mean[0, -1, ACT_DIM].item() == pytest.approx(2.0 - 0.7 * 0.25 * 2.0)
    assert torch.equal(at_input[0, :-1], mean[0, :-1])
    with pytest.raises(ValueError, match="gradient_at must be one of"):
        GuidanceConfig(gradient_at="x0")


def test_cost_guide_with_normalizer_sees_robot_units(toy_normalizer):
    seen = {}

    def record(x, t):
        seen["x"] = x
        return x.sum(dim=(1, 2))

    robot = torch.tensor(np.random.default_rng(0).uniform(-3, 3, (2, HORIZON, D)), dtype=torch.float32)
    CostGuide(record, normalizer=toy_normalizer)(toy_normalizer.normalize(robot), torch.zeros(2))
    assert torch.allclose(seen["x"], robot, atol=1e-5)


def test_composite_guide_sums_weighted_terms():
    x, t = torch.randn(3, HORIZON, D), torch.zeros(3, dtype=torch.long)
    first, second = CostGuide(final_x), CostGuide(lambda x, t: x.pow(2).sum(dim=(1, 2)))
    combined = CompositeGuide([(first, 2.0), (second, 0.5)])
    assert torch.allclose(combined(x, t), 2 * first(x, t) + 0.5 * second(x, t))
    assert torch.allclose(combine_guides([first, (second, 0.5)])(x, t), first(x, t) + 0.5 * second(x, t))
    with pytest.raises(ValueError, match="at least one"):
        CompositeGuide([])


def test_goal_distance_guide_is_zero_at_the_goal_and_checks_sizes():
    guide = GoalDistanceGuide(goal=(1.0, -1.0), dims=(0, 1), action_dim=ACT_DIM)
    x = torch.zeros(2, HORIZON, D)
    x[:, -1, ACT_DIM:] = torch.tensor([1.0, -1.0])
    assert torch.equal(guide(x, torch.zeros(2)), torch.zeros(2))
    x[1, -1, ACT_DIM] = 3.0
    assert guide(x, torch.zeros(2))[1] == -4.0
    with pytest.raises(ValueError, match="2 values but 1 dims"):
        GoalDistanceGuide(goal=(1.0, -1.0), dims=(0,), action_dim=ACT_DIM)


def test_cost_must_return_one_value_per_plan():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        CostGuide(lambda x, t: x.sum())(torch.zeros(2, HORIZON, D), torch.zeros(2))


def dataset_return_variance(dataset):
    return torch.stack([dataset[i]["values"] for i in range(len(dataset))]).var().item()


def test_learned_value_guide_steers_plans_towards_higher_return(trained_toy, toy_normalizer):
    """Value model trained on returns = sum of x positions; guidance raises the plans' x."""
    torch.manual_seed(0)
    episodes = line_episodes(count=128, length=HORIZON, seed=3, with_rewards=True)
    dataset = ValueDataset(episodes, HORIZON, toy_normalizer, discount=1.0)
    value_model = ValueModel(D, ValueConfig(dim=8, dim_mults=(1, 2), hidden_dim=32))
    objective = ValueObjective(value_model, n_timesteps=10, action_dim=ACT_DIM, condition_on="start_goal")
    optimizer = torch.optim.Adam(objective.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(150):
        batch = [dataset[i] for i in torch.randint(0, len(dataset), (32,), generator=generator)]
        loss = objective(torch.stack([b["trajectories"] for b in batch]),
                         torch.stack([b["values"] for b in batch]), generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    diffusion = trained_toy[0].ema.model
    guide = ValueGuide(value_model.requires_grad_(False))
    free = sample_final_x(diffusion, DDPMSampler(), None)
    guided = sample_final_x(diffusion, DDPMSampler(), guide, scale=0.3)
    assert loss.item() < 0.5 * dataset_return_variance(dataset)  # the value model learned something
    assert guided.mean() > free.mean() + 0.1


def test_a_value_guide_reads_plans_in_the_value_models_own_units():
    """A value model fitted with another normalization than the diffusion model's sees each plan as
    its own normalizer writes it (and neither normalizer alone is refused)."""
    from diffuser_core.data.normalization import TrajectoryNormalizer

    rng = np.random.default_rng(0)
    observations, actions = rng.normal(size=(200, OBS_DIM)), rng.normal(size=(200, ACT_DIM))
    planner_units = TrajectoryNormalizer.fit(observations, actions)
    value_units = TrajectoryNormalizer.fit(3.0 * observations + 1.0, 2.0 * actions)
    seen = []

    def value_model(x, t):
        seen.append(x)
        return x.sum(dim=(1, 2))

    value_model.eval = lambda: value_model
    x = torch.randn(2, HORIZON, D)
    ValueGuide(value_model, planner_units, value_units)(x, torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(seen[0], value_units.normalize(planner_units.unnormalize(x)))
    with pytest.raises(ValueError, match="both normalizers"):
        ValueGuide(value_model, planner_units)
