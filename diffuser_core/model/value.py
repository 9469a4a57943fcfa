"""Learned value model J_phi(tau_t, t) for reward guidance (paper §3.2, §5.2).

The down half of a temporal U-Net encodes a noisy trajectory; its features, averaged over time
(so any horizon works) and joined with the diffusion-step embedding, go through an MLP to one
number: the discounted return of the clean trajectory. It is trained on trajectories noised by the
same schedule the sampler uses, so its gradient is meaningful at every denoising step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffuser_core.config import ValueConfig
from diffuser_core.model.diffusion import NoiseSchedule, condition_mask
from diffuser_core.model.unet import ResidualTemporalBlock, downsample, time_mlp


class ValueModel(nn.Module):
    """(batch, horizon, transition_dim) noisy trajectories + (batch,) steps -> (batch,) returns."""

    def __init__(self, transition_dim: int, config: ValueConfig | None = None):
        super().__init__()
        config = config or ValueConfig()
        self.transition_dim, self.config = transition_dim, config
        encoder = config.encoder()
        self.time_embedding = time_mlp(config.dim)
        self.blocks = nn.ModuleList()
        in_channels = transition_dim
        for level, mult in enumerate(config.dim_mults):
            out_channels = config.dim * mult
            self.blocks.append(nn.ModuleList([
                ResidualTemporalBlock(in_channels, out_channels, config.dim, encoder),
                ResidualTemporalBlock(out_channels, out_channels, config.dim, encoder),
                downsample(out_channels) if level < encoder.levels - 1 else nn.Identity()]))
            in_channels = out_channels
        self.head = nn.Sequential(nn.Linear(in_channels + config.dim, config.hidden_dim), nn.Mish(),
                                  nn.Linear(config.hidden_dim, config.hidden_dim), nn.Mish(),
                                  nn.Linear(config.hidden_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted return (batch,) of noisy trajectories x at diffusion steps t."""
        if x.ndim != 3 or x.shape[-1] != self.transition_dim:
            raise ValueError(f"expected (batch, horizon, {self.transition_dim}), got {tuple(x.shape)}")
        embedding = self.time_embedding(t)
        h = x.transpose(1, 2)
        for block, block2, down in self.blocks:
            h = down(block2(block(h, embedding), embedding))
        features = torch.cat([h.mean(dim=-1), embedding], dim=-1)
        return self.head(features).squeeze(-1)


class ValueObjective(nn.Module):
    """Training loss of the value model: regress returns from trajectories noised to random steps.

    `forward(trajectories, values)` returns the loss (DistributedDataParallel-friendly).
    """

    def __init__(self, value_model: ValueModel, n_timesteps: int, action_dim: int,
                 condition_on: str = "start"):
        super().__init__()
        self.value_model, self.action_dim, self.condition_on = value_model, action_dim, condition_on
        self.schedule = NoiseSchedule(n_timesteps)

    def forward(self, trajectories: torch.Tensor, values: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE between predicted and true returns of trajectories noised to random steps."""
        batch, horizon, transition_dim = trajectories.shape
        device = trajectories.device
        t = torch.randint(0, self.schedule.n_timesteps, (batch,), device=device, generator=generator)
        noise = torch.randn(trajectories.shape, device=device, generator=generator)
        mask = condition_mask(self.condition_on, horizon, self.action_dim, transition_dim, device)
        x_t = torch.where(mask, trajectories, self.schedule.q_sample(trajectories, t, noise))
        return F.mse_loss(self.value_model(x_t, t), values)
