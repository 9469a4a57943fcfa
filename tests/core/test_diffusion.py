"""Gaussian diffusion: cosine schedule, forward process, both prediction targets, weighted loss."""
import math

import pytest
import torch

from diffuser_core.config import DiffusionConfig, UnetConfig
from diffuser_core.model.diffusion import NoiseSchedule, build_diffusion, condition_mask, cosine_beta_schedule

UNET = UnetConfig(dim=8, dim_mults=(1, 2))


def test_cosine_schedule_runs_from_clean_to_noise():
    betas = cosine_beta_schedule(100)
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    assert betas.shape == (100,) and betas.min() > 0 and betas.max() <= 0.999
    assert torch.all(betas[1:] >= betas[:-1])  # noise is added faster and faster
    assert alphas_cumprod[0] > 0.999 and alphas_cumprod[-1] < 1e-3
    # cos^2 shape: half the signal variance is gone about half way
    middle = float(alphas_cumprod[49])
    assert abs(middle - math.cos((0.5 + 0.008) / 1.008 * math.pi / 2) ** 2) < 0.02


def test_q_sample_has_the_forward_process_statistics():
    schedule = NoiseSchedule(20)
    x0 = torch.full((20_000, 1, 1), 0.5)
    t = torch.full((20_000,), 10)
    x_t = schedule.q_sample(x0, t, torch.randn_like(x0))
    abar = schedule.alphas_cumprod[10]
    assert abs(x_t.mean() - abar.sqrt() * 0.5) < 0.02
    assert abs(x_t.var() - (1 - abar)) < 0.02


def test_epsilon_and_x0_parametrisations_are_inverse():
    schedule = NoiseSchedule(30)
    x0, eps = torch.randn(4, 8, 3), torch.randn(4, 8, 3)
    t = torch.tensor([0, 5, 17, 29])
    x_t = schedule.q_sample(x0, t, eps)
    assert torch.allclose(schedule.epsilon_from_x0(x_t, t, x0), eps, atol=1e-4)
    assert torch.allclose(schedule.x0_from_epsilon(x_t, t, eps), x0, atol=1e-3)


def test_posterior_matches_monte_carlo_of_the_forward_process():
    """E[x_{t-1} | x_t, x0] and its variance, estimated by regression on forward samples."""
    torch.manual_seed(0)
    schedule, t, x0 = NoiseSchedule(30), 12, 0.7
    abar_prev = schedule.alphas_cumprod[t - 1]
    x_prev = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * torch.randn(200_000)
    x_t = (1 - schedule.betas[t]).sqrt() * x_prev + schedule.betas[t].sqrt() * torch.randn(200_000)
    slope = torch.cov(torch.stack([x_t, x_prev]))[0, 1] / x_t.var()
    fitted = x_prev.mean() + slope * (x_t - x_t.mean())
    predicted = schedule.posterior_mean(torch.full((1, 1, 1), x0), x_t.view(-1, 1, 1),
                                        torch.full((200_000,), t)).flatten()
    assert (fitted - predicted).abs().max() < 0.01
    assert abs((x_prev - fitted).var() / schedule.posterior_variance[t] - 1) < 0.02
    # at the last reverse step the posterior mean is the clean trajectory itself
    assert torch.allclose(schedule.posterior_mean(torch.ones(1, 2, 2), torch.zeros(1, 2, 2),
                                                  torch.tensor([0])), torch.ones(1, 2, 2))


@pytest.mark.parametrize("target", ["x0", "epsilon", "v"])
def test_loss_is_finite_and_trains_every_target(target):
    torch.manual_seed(0)
    config = DiffusionConfig(n_timesteps=10, predict_epsilon=target == "epsilon", predict_v=target == "v")
    model = build_diffusion(3, 2, UNET, config)
    x0 = torch.rand(16, 8, 5) * 2 - 1
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = model(x0, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) < sum(losses[:5])


def test_v_prediction_recovers_the_clean_trajectory_from_the_true_velocity():
    schedule = build_diffusion(3, 0, UNET, DiffusionConfig(n_timesteps=10, predict_v=True)).schedule
    x0, noise, t = torch.randn(4, 8, 3), torch.randn(4, 8, 3), torch.tensor([0, 3, 6, 9])
    x_t = schedule.q_sample(x0, t, noise)
    assert torch.allclose(schedule.x0_from_velocity(x_t, t, schedule.velocity(x0, t, noise)), x0, atol=1e-5)
    with pytest.raises(ValueError, match="exclusive"):
        DiffusionConfig(predict_epsilon=True, predict_v=True)


def test_predict_x0_clips_only_when_configured():
    torch.manual_seed(0)
    clipped = build_diffusion(1, 1, UNET, DiffusionConfig(n_timesteps=10, predict_epsilon=True))
    x_t, t = torch.randn(2, 8, 2) * 5, torch.tensor([9, 9])
    assert clipped.predict_x0(x_t, t).abs().max() <= 1
    raw = build_diffusion(1, 1, UNET, DiffusionConfig(n_timesteps=10, predict_epsilon=True,
                                                      clip_denoised=False))
    raw.load_state_dict(clipped.state_dict())
    assert raw.predict_x0(x_t, t).abs().max() > 1


def test_loss_weights_put_action_weight_on_first_action_and_discount_time():
    model = build_diffusion(3, 2, UNET, DiffusionConfig(action_weight=10.0, loss_discount=0.5,
                                                        dim_weights=(1, 1, 2, 1, 1)))
    weights = model.loss_weights(4)
    assert weights.shape == (4, 5)
    assert torch.equal(weights[0, :2], torch.tensor([10.0, 10.0]))
    assert weights[0, 2] == 2 and weights[1, 0] == 0.5 and weights[3, 2] == 2 * 0.125


def test_condition_mask_fixes_observations_of_start_and_goal():
    mask = condition_mask("start_goal", 6, 2, 5)
    assert mask[0, 2:].all() and mask[-1, 2:].all() and not mask[0, :2].any()
    assert mask.sum() == 6
    assert condition_mask("none", 6, 2, 5).sum() == 0
    assert condition_mask("start", 6, 2, 5).sum() == 3


def test_conditioned_entries_do_not_contribute_to_the_loss():
    """With every observation conditioned and no actions, there is nothing left to learn."""
    model = build_diffusion(2, 0, UNET, DiffusionConfig(n_timesteps=10, condition_on="start_goal"))
    x0 = torch.zeros(2, 2, 2)  # horizon 2: both rows fixed
    assert model(x0).item() == 0


def test_dim_weights_must_match_transition_dim():
    with pytest.raises(ValueError, match="dim_weights has 2 entries"):
        build_diffusion(3, 2, UNET, DiffusionConfig(dim_weights=(1, 1)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_timesteps=0), "n_timesteps"), (dict(loss_type="l3"), "loss_type"),
    (dict(loss_discount=0), "loss_discount"), (dict(condition_on="end"), "condition_on"),
    (dict(action_weight=-1), "action_weight")])
def test_diffusion_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiffusionConfig(**kwargs)
