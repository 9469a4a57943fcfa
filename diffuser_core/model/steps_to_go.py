"""Steps to go: how many env steps the offline data needs, at best, from one state to another.

A small MLP f(start, goal) -> log steps, trained on pairs (s_i, s_j), j > i, of the same episode,
target j - i. The data's route between two states is often longer than the shortest one (its
expert wanders, or switches targets), so the model fits a LOW quantile of log steps (pinball
loss): the steps the quicker routes in the data took. Its inputs are the state columns
`input_dims` (the task's choice, e.g. the position columns), normalized with the data's mean and
std. A plan length is then sized from it (diffuser_core.planning.horizon).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from diffuser_core.data.pairs import PairSampler


@dataclass(frozen=True)
class StepsToGoConfig:
    """The model and its training. input_dims: state columns it reads; quantile: the pinball loss's
    tau (low: the quicker routes of the data); max_gap: the longest pair (j - i) it sees; hidden,
    layers: the MLP; frequencies: Fourier features per input (0: none), for sharp changes over
    space; steps, batch_size, learning_rate, seed: the optimisation (a fixed number of steps)."""

    input_dims: tuple[int, ...] = (0, 1)
    quantile: float = 0.1
    max_gap: int = 800
    hidden: int = 128
    layers: int = 3
    frequencies: int = 4
    steps: int = 3000
    batch_size: int = 1024
    learning_rate: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "input_dims", tuple(int(d) for d in self.input_dims))
        if not self.input_dims or min(self.input_dims) < 0 or len(set(self.input_dims)) != len(self.input_dims):
            raise ValueError(f"steps-to-go input_dims must be distinct state columns >= 0, got {self.input_dims}")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"steps-to-go quantile must be in (0, 1), got {self.quantile}")
        for name in ("max_gap", "hidden", "layers", "steps", "batch_size"):
            _require_positive_int(name, getattr(self, name))
        if isinstance(self.frequencies, bool) or not isinstance(self.frequencies, int) or self.frequencies < 0:
            raise ValueError(f"steps-to-go frequencies must be an integer >= 0, got {self.frequencies!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"steps-to-go learning_rate must be > 0, got {self.learning_rate}")

    def to_dict(self) -> dict:
        return {**asdict(self), "input_dims": list(self.input_dims)}


class StepsToGo(nn.Module):
    """(batch, obs) starts and goals -> (batch,) predicted steps; reads config.input_dims of each."""

    def __init__(self, config: StepsToGoConfig | None = None):
        super().__init__()
        self.config = config = config or StepsToGoConfig()
        width = len(config.input_dims)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("frequency_scale", 2.0 ** torch.arange(config.frequencies, dtype=torch.float32))
        features = 3 * width * (1 + 2 * config.frequencies)
        sizes = [features] + [config.hidden] * config.layers
        blocks = [module for a, b in zip(sizes, sizes[1:]) for module in (nn.Linear(a, b), nn.Mish())]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], 1))

    @property
    def input_dims(self) -> tuple[int, ...]:
        return self.config.input_dims

    def features(self, starts: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Normalized start, goal and their difference, each with sin/cos at a few frequencies."""
        a, b = (starts - self.mean) / self.std, (goals - self.mean) / self.std
        x = torch.cat([a, b, b - a], dim=-1)
        if self.config.frequencies == 0:
            return x
        angles = (x[..., None] * self.frequency_scale).flatten(-2)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)

    def forward(self, starts: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Predicted log steps (batch,) from the input columns of starts and goals (batch, len(input_dims))."""
        return self.net(self.features(starts, goals)).squeeze(-1)

    def predict(self, starts, goals) -> np.ndarray:
        """Predicted steps from full states: (obs,) each gives a 0-d array, (batch, obs) each a (batch,) one."""
        starts, goals = self._columns("start", starts), self._columns("goal", goals)
        if starts.shape != goals.shape:
            raise ValueError(f"starts and goals must have the same shape, got {starts.shape} and {goals.shape}")
        with torch.inference_mode():
            log_steps = self(torch.from_numpy(starts.reshape(-1, starts.shape[-1])),
                             torch.from_numpy(goals.reshape(-1, goals.shape[-1])))
        return np.exp(log_steps.double().numpy()).reshape(starts.shape[:-1])

    def _columns(self, name: str, states) -> np.ndarray:
        """The input columns of (obs,) or (batch, obs) states, checked finite."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim not in (1, 2) or states.shape[-1] <= max(self.input_dims):
            raise ValueError(f"steps-to-go {name} must be (obs,) or (batch, obs) with obs > {max(self.input_dims)}, "
                             f"got shape {states.shape}")
        if not np.all(np.isfinite(states)):
            raise ValueError(f"steps-to-go {name} must be finite")
        return np.ascontiguousarray(states[..., list(self.input_dims)])


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor, quantile: float) -> torch.Tensor:
    """Mean quantile (pinball) loss: its minimiser is the `quantile` of target given the inputs."""
    error = target - predicted
    return torch.mean(torch.maximum(quantile * error, (quantile - 1.0) * error))


def fit_steps_to_go(episodes: Sequence[np.ndarray], config: StepsToGoConfig | None = None,
                    log=None) -> StepsToGo:
    """Train a StepsToGo on pairs of the episodes' observations ((T, obs) arrays); `log(message)`
    hears the loss now and then. Deterministic for a config's seed."""
    config = config or StepsToGoConfig()
    torch.manual_seed(config.seed)
    sampler = PairSampler(episodes, config.input_dims, config.max_gap, np.random.default_rng(config.seed))
    model = StepsToGo(config)
    model.mean.copy_(torch.from_numpy(sampler.states.mean(axis=0)))
    model.std.copy_(torch.from_numpy(np.maximum(sampler.states.std(axis=0), 1e-6)))
    _, _, steps = sampler.sample(4096)
    model.net[-1].bias.data.fill_(float(np.quantile(np.log(steps), config.quantile)))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    started = time.perf_counter()
    for step in range(config.steps):
        starts, goals, steps = (torch.from_numpy(a) for a in sampler.sample(config.batch_size))
        loss = pinball_loss(model(starts, goals), torch.log(steps), config.quantile)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if log is not None and (step + 1) % max(1, config.steps // 10) == 0:
            log(f"step {step + 1}/{config.steps}: pinball loss {loss.item():.4f} ({time.perf_counter() - started:.0f} s)")
    return model.eval().requires_grad_(False)


def _require_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"steps-to-go {name} must be a positive integer, got {value!r}")
