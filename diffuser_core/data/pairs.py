"""Pairs of states from the same episode of the offline data, a number of steps apart: what the data
says about how long one state takes to reach another (planning.horizon's steps-to-go, planning.choice's
reachability)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class PairSampler:
    """Random pairs (s_i, s_j), 0 < j - i <= max_gap, of the same episode, from episodes' observations."""

    episodes: Sequence[np.ndarray]
    input_dims: tuple[int, ...]
    max_gap: int
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def __post_init__(self):
        lengths = [len(e) for e in self.episodes]
        if not lengths or max(lengths) < 2:
            raise ValueError("pairs need at least one episode of two or more states")
        if any(np.ndim(e) != 2 or np.shape(e)[1] <= max(self.input_dims) for e in self.episodes):
            raise ValueError(f"episodes must be (T, obs) arrays with obs > {max(self.input_dims)}")
        self.states = np.concatenate([np.asarray(e, np.float32)[:, list(self.input_dims)] for e in self.episodes])
        self.episode = np.repeat(np.arange(len(lengths)), lengths)

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, goals, steps) of `count` pairs, gaps uniform in [1, max_gap] (kept within episodes)."""
        chosen: list[np.ndarray] = []
        while sum(len(c) for c in chosen) < count:
            i = self.rng.integers(0, len(self.states) - 1, 4 * count)
            j = np.minimum(i + self.rng.integers(1, self.max_gap + 1, 4 * count), len(self.states) - 1)
            keep = (self.episode[i] == self.episode[j]) & (j > i)
            chosen.append(np.stack([i[keep], j[keep]], axis=1))
        pairs = np.concatenate(chosen)[:count]
        return self.states[pairs[:, 0]], self.states[pairs[:, 1]], (pairs[:, 1] - pairs[:, 0]).astype(np.float32)
