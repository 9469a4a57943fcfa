"""Exponential moving average of model weights: the smoothed weights are the ones used to plan."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps `model` = decay * model + (1 - decay) * live weights, every `update_every` steps;
    before `start_step` it simply copies the live weights (as the reference training does)."""

    def __init__(self, live: nn.Module, decay: float = 0.995, start_step: int = 0, update_every: int = 1):
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.start_step, self.update_every = decay, start_step, update_every
        self.model = copy.deepcopy(live).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, live: nn.Module, step: int) -> None:
        """Fold the live weights in after optimizer step number `step`."""
        if step % self.update_every != 0:
            return
        weight = 1.0 if step < self.start_step else 1 - self.decay
        for averaged, current in zip(self.model.parameters(), live.parameters()):
            averaged.lerp_(current, weight)
        for averaged, current in zip(self.model.buffers(), live.buffers()):
            averaged.copy_(current)
