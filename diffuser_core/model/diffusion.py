"""Gaussian diffusion over trajectories (DDPM, Ho et al. 2020; paper §2-3).

The forward process noises a clean trajectory tau_0 over N steps with a cosine schedule; the
network learns to undo one step, either by predicting the noise eps or the clean trajectory x0.
Step indices t run 0..N-1 (index t is the paper's step t+1).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from diffuser_core.config import DiffusionConfig, UnetConfig
from diffuser_core.model.unet import TemporalUnet


def cosine_beta_schedule(n_timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Betas whose cumulative alpha follows cos^2 (Nichol & Dhariwal 2021), capped at 0.999."""
    steps = torch.linspace(0, n_timesteps, n_timesteps + 1, dtype=torch.float64)
    alphas_cumprod = torch.cos(((steps / n_timesteps) + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(0, 0.999)


def gather(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """values[t] shaped (batch, 1, 1) to broadcast over (batch, horizon, dim)."""
    return values[t].view(-1, 1, 1)


class NoiseSchedule(nn.Module):
    """Constants of the forward process q(tau_t | tau_0) and its posterior q(tau_{t-1} | tau_t, tau_0)."""

    def __init__(self, n_timesteps: int):
        super().__init__()
        self.n_timesteps = n_timesteps
        betas = cosine_beta_schedule(n_timesteps)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
        constants = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            "posterior_variance": posterior_variance,
            # the variance at t=0 is 0; use t=1's value so the log stays finite (as DDPM does)
            "posterior_log_variance": torch.log(torch.cat([posterior_variance[1:2],
                                                           posterior_variance[1:]])),
            "posterior_mean_coef_x0": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef_xt": (1 - alphas_cumprod_prev) * (1 - betas).sqrt()
            / (1 - alphas_cumprod),
        }
        for name, value in constants.items():  # derived from the config: never stored in checkpoints
            self.register_buffer(name, value.float(), persistent=False)
        # host copies let samplers read per-step scalars without a device synchronisation
        self.host = {name: value.numpy() for name, value in constants.items()}

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """tau_t = sqrt(abar_t) tau_0 + sqrt(1 - abar_t) eps."""
        return gather(self.sqrt_alphas_cumprod, t) * x0 + gather(self.sqrt_one_minus_alphas_cumprod,
                                                                 t) * noise

    def epsilon_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise that takes x0 to x_t at step t."""
        return (x_t - gather(self.sqrt_alphas_cumprod, t) * x0) / gather(
            self.sqrt_one_minus_alphas_cumprod, t)

    def velocity(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) tau_0, the v-prediction target."""
        return gather(self.sqrt_alphas_cumprod, t) * noise - gather(self.sqrt_one_minus_alphas_cumprod, t) * x0

    def x0_from_velocity(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """tau_0 = sqrt(abar_t) tau_t - sqrt(1 - abar_t) v: near the data end it is mostly the input
        itself, so small errors in v barely move precise (low-noise) plans."""
        return gather(self.sqrt_alphas_cumprod, t) * x_t - gather(self.sqrt_one_minus_alphas_cumprod, t) * v

    def x0_from_epsilon(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The clean trajectory implied by x_t and its noise."""
        return (x_t - gather(self.sqrt_one_minus_alphas_cumprod, t) * eps) / gather(
            self.sqrt_alphas_cumprod, t)

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(tau_{t-1} | tau_t, tau_0)."""
        return gather(self.posterior_mean_coef_x0, t) * x0 + gather(self.posterior_mean_coef_xt, t) * x_t


def condition_mask(mode: str, horizon: int, action_dim: int, transition_dim: int,
                   device=None) -> torch.Tensor:
    """(horizon, transition_dim) bool mask of the observation entries a mode fixes: the start
    state for "start", start and final state for "start_goal", nothing for "none"."""
    mask = torch.zeros(horizon, transition_dim, dtype=torch.bool, device=device)
    if mode in ("start", "start_goal"):
        mask[0, action_dim:] = True
    if mode == "start_goal":
        mask[-1, action_dim:] = True
    return mask


class GaussianDiffusion(nn.Module):
    """A denoising network plus its noise schedule: the trajectory model p_theta(tau).

    `forward(trajectories)` returns the training loss (so DistributedDataParallel can wrap it);
    samplers call `predict_x0`.
    """

    def __init__(self, network: nn.Module, observation_dim: int, action_dim: int,
                 config: DiffusionConfig | None = None):
        super().__init__()
        config = config or DiffusionConfig()
        transition_dim = observation_dim + action_dim
        if observation_dim < 1 or action_dim < 0:
            raise ValueError(f"need observation_dim >= 1 and action_dim >= 0, "
                             f"got {observation_dim}, {action_dim}")
        if config.dim_weights is not None and len(config.dim_weights) != transition_dim:
            raise ValueError(f"diffusion.dim_weights has {len(config.dim_weights)} entries, "
                             f"expected transition_dim={transition_dim} (actions first)")
        self.network, self.config = network, config
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.schedule = NoiseSchedule(config.n_timesteps)

    @property
    def transition_dim(self) -> int:
        return self.observation_dim + self.action_dim

    @property
    def n_timesteps(self) -> int:
        return self.config.n_timesteps

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's estimate of the clean trajectory, clipped to [-1, 1] if configured."""
        output = self.network(x_t, t)
        if self.config.predict_epsilon:
            x0 = self.schedule.x0_from_epsilon(x_t, t, output)
        elif self.config.predict_v:
            x0 = self.schedule.x0_from_velocity(x_t, t, output)
        else:
            x0 = output
        return x0.clamp(-1, 1) if self.config.clip_denoised else x0

    def loss_weights(self, horizon: int, device=None) -> torch.Tensor:
        """(horizon, transition_dim) weights: per-dimension weights x discount^t, with
        `action_weight` on the first action (the one the robot executes)."""
        dim_weights = torch.ones(self.transition_dim, device=device)
        if self.config.dim_weights is not None:
            dim_weights = torch.tensor(self.config.dim_weights, device=device)
        discounts = self.config.loss_discount ** torch.arange(horizon, device=device, dtype=torch.float32)
        weights = discounts[:, None] * dim_weights[None, :]
        weights[0, :self.action_dim] = self.config.action_weight
        return weights

    def forward(self, trajectories: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Training loss on clean normalized trajectories (batch, horizon, transition_dim):
        noise them to a random step, give the conditioned entries clean, regress the target."""
        batch, horizon, _ = trajectories.shape
        device = trajectories.device
        t = torch.randint(0, self.n_timesteps, (batch,), device=device, generator=generator)
        noise = torch.randn(trajectories.shape, device=device, generator=generator)
        mask = condition_mask(self.config.condition_on, horizon, self.action_dim,
                              self.transition_dim, device)
        x_t = torch.where(mask, trajectories, self.schedule.q_sample(trajectories, t, noise))
        prediction = self.network(x_t, t)
        target = (noise if self.config.predict_epsilon
                  else self.schedule.velocity(trajectories, t, noise) if self.config.predict_v else trajectories)
        error = (prediction - target).abs() if self.config.loss_type == "l1" else (prediction - target) ** 2
        weights = self.loss_weights(horizon, device) * (~mask)  # fixed entries carry no signal
        return (error * weights).sum() / (weights.sum().clamp_min(1e-8) * batch)


def build_diffusion(observation_dim: int, action_dim: int, unet: UnetConfig,
                    diffusion: DiffusionConfig) -> GaussianDiffusion:
    """The paper's model: a temporal U-Net denoiser inside a Gaussian diffusion."""
    if unet.start_embedding and diffusion.condition_on == "none":
        raise ValueError("model.start_embedding reads the inpainted start state: it needs "
                         "diffusion.condition_on 'start' or 'start_goal', not 'none'")
    return GaussianDiffusion(TemporalUnet(observation_dim + action_dim, unet, action_dim),
                             observation_dim, action_dim, diffusion)
