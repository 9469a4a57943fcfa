"""Temporal U-Net (paper §3.1, Fig. 2): the denoiser over whole trajectories.

Convolutions run over plan time only (a trajectory is a 1-D "image" whose channels are the
transition dimensions), so the receptive field is local in time: one network call only enforces
local consistency, and global coherence comes from many denoising steps. The optional start
embedding is the one exception: the inpainted first state reaches every step directly.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from diffuser_core.config import UnetConfig


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style sin/cos features of the integer diffusion step."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        frequencies = torch.exp(-math.log(10_000) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def time_mlp(dim: int) -> nn.Module:
    """Diffusion-step embedding: sinusoidal features -> MLP (dim -> 4 dim -> dim)."""
    return nn.Sequential(SinusoidalTimeEmbedding(dim), nn.Linear(dim, dim * 4), nn.Mish(),
                         nn.Linear(dim * 4, dim))


class ConvNormMish(nn.Module):
    """Conv1d over time -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int, norm: str):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(groups, out_channels) if norm == "group" else nn.Identity()
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResidualTemporalBlock(nn.Module):
    """Two conv blocks with the time embedding added in between, plus a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, config: UnetConfig):
        super().__init__()
        args = (config.kernel_size, config.norm_groups, config.norm)
        self.first = ConvNormMish(in_channels, out_channels, *args)
        self.second = ConvNormMish(out_channels, out_channels, *args)
        self.time_projection = nn.Sequential(nn.Mish(), nn.Linear(embed_dim, out_channels))
        self.residual = (nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.first(x) + self.time_projection(embedding)[:, :, None]
        return self.second(h) + self.residual(x)


def downsample(channels: int) -> nn.Module:
    """Halve the time resolution."""
    return nn.Conv1d(channels, channels, 3, stride=2, padding=1)


def upsample(channels: int) -> nn.Module:
    """Double the time resolution."""
    return nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1)


def start_mlp(state_dim: int, dim: int) -> nn.Module:
    """Start-state embedding: state -> MLP (state_dim -> 4 dim -> dim), added to the step's."""
    return nn.Sequential(nn.Linear(state_dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))


class TemporalUnet(nn.Module):
    """eps_theta / x0_theta(tau_t, t): maps (batch, horizon, transition_dim) to the same shape.

    With `config.start_embedding`, the observation part of plan step 0 (columns `action_dim:`)
    also conditions every block, like the diffusion step does.
    """

    def __init__(self, transition_dim: int, config: UnetConfig | None = None, action_dim: int = 0):
        super().__init__()
        config = config or UnetConfig()
        if transition_dim < 1:
            raise ValueError(f"transition_dim must be >= 1, got {transition_dim}")
        if not 0 <= action_dim < transition_dim:
            raise ValueError(f"action_dim must be in [0, {transition_dim}), got {action_dim}")
        self.transition_dim, self.config, self.action_dim = transition_dim, config, action_dim
        dim = config.dim
        channels = [dim * mult for mult in config.dim_mults]
        self.time_embedding = time_mlp(dim)
        self.start_embedding = (start_mlp(transition_dim - action_dim, dim)
                                if config.start_embedding else None)

        self.downs = nn.ModuleList()
        in_channels = transition_dim
        for level, out_channels in enumerate(channels):
            is_bottom = level == config.levels - 1
            self.downs.append(nn.ModuleList([
                ResidualTemporalBlock(in_channels, out_channels, dim, config),
                ResidualTemporalBlock(out_channels, out_channels, dim, config),
                nn.Identity() if is_bottom else downsample(out_channels)]))
            in_channels = out_channels

        self.mid = nn.ModuleList([ResidualTemporalBlock(channels[-1], channels[-1], dim, config),
                                  ResidualTemporalBlock(channels[-1], channels[-1], dim, config)])

        self.ups = nn.ModuleList()
        for level in reversed(range(config.levels)):
            out_channels = channels[max(level - 1, 0)]
            self.ups.append(nn.ModuleList([
                ResidualTemporalBlock(2 * channels[level], out_channels, dim, config),
                ResidualTemporalBlock(out_channels, out_channels, dim, config),
                upsample(out_channels) if level > 0 else nn.Identity()]))

        self.final = nn.Sequential(
            ConvNormMish(channels[0], channels[0], config.kernel_size, config.norm_groups, config.norm),
            nn.Conv1d(channels[0], transition_dim, 1))

    def check_horizon(self, horizon: int) -> None:
        """Raise ValueError unless the U-Net can process plans of this length."""
        multiple = self.config.horizon_multiple
        if horizon < 1 or horizon % multiple != 0:
            raise ValueError(f"horizon {horizon} must be a positive multiple of {multiple} "
                             f"(2^(levels-1) for dim_mults={self.config.dim_mults})")

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Denoiser output for trajectories x (batch, horizon, transition_dim) at steps t (batch,)."""
        if x.ndim != 3 or x.shape[-1] != self.transition_dim:
            raise ValueError(f"expected (batch, horizon, {self.transition_dim}), got {tuple(x.shape)}")
        self.check_horizon(x.shape[1])
        embedding = self.time_embedding(t)
        if self.start_embedding is not None:
            embedding = embedding + self.start_embedding(x[:, 0, self.action_dim:])
        h = x.transpose(1, 2)  # convolve over time: channels = transition dimensions
        skips = []
        for block, block2, down in self.downs:
            h = block2(block(h, embedding), embedding)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, embedding)
        for block, block2, up in self.ups:
            h = block(torch.cat([h, skips.pop()], dim=1), embedding)
            h = up(block2(h, embedding))
        return self.final(h).transpose(1, 2)

    def receptive_radius(self) -> int:
        """Upper bound on how many time steps away an input can influence an output in one call
        (exact locality holds for norm="none"; GroupNorm adds a weak global coupling; the start
        embedding, when on, lets plan step 0 reach every step)."""
        k = self.config.kernel_size // 2
        radius, stride = 0, 1
        for level in range(self.config.levels):  # down path: 4 convs, then halve resolution
            radius += 4 * k * stride
            if level < self.config.levels - 1:
                radius += stride
                stride *= 2
        radius += 4 * k * stride  # middle blocks
        for level in reversed(range(self.config.levels)):  # up path: 4 convs, then double
            radius += 4 * k * stride
            if level > 0:
                radius += stride
                stride //= 2
        return radius + k  # final conv block
