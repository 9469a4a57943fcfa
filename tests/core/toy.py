"""Toy problem for the core tests: straight-line trajectories between random points, tiny models."""
from __future__ import annotations

import numpy as np
import torch

from diffuser_core.checkpoint import CheckpointConfig
from diffuser_core.config import DiffusionConfig, TrainingConfig, UnetConfig
from diffuser_core.data.datasets import Episode
from diffuser_core.model.diffusion import build_diffusion

torch.set_num_threads(1)

HORIZON = 8
OBS_DIM = ACT_DIM = 2
TINY_UNET = UnetConfig(dim=16, dim_mults=(1, 2))
TOY_DIFFUSION = DiffusionConfig(n_timesteps=10, condition_on="start_goal")


def straight_line(start, end, length):
    """Observations moving at constant speed from start to end; actions = the per-step velocity."""
    fraction = np.linspace(0, 1, length)[:, None]
    observations = start + (end - start) * fraction
    actions = np.repeat(((end - start) / (length - 1))[None], length, axis=0)
    return observations, actions


def line_episodes(count=256, length=2 * HORIZON, seed=0, with_rewards=False):
    """Straight lines between random points of [-3, 3]^2; reward = the x coordinate."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(count):
        observations, actions = straight_line(rng.uniform(-3, 3, 2), rng.uniform(-3, 3, 2), length)
        episodes.append(Episode(observations, actions, observations[:, 0] if with_rewards else None))
    return episodes


def checkpoint_config(horizon=HORIZON, unet=TINY_UNET, diffusion=TOY_DIFFUSION):
    return CheckpointConfig("diffusion", OBS_DIM, ACT_DIM, horizon, "limits", diffusion, unet,
                            env="toy-lines")


def tiny_diffusion(seed=0, unet=TINY_UNET, diffusion=TOY_DIFFUSION):
    torch.manual_seed(seed)
    return build_diffusion(OBS_DIM, ACT_DIM, unet, diffusion)


def quick_training(**overrides):
    settings = dict(steps=400, batch_size=32, learning_rate=3e-3, ema_decay=0.9,
                    checkpoint_every=10_000, log_every=100, progress=False, device="cpu")
    settings.update(overrides)
    return TrainingConfig(**settings)


