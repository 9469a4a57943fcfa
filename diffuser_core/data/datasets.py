"""Episodes -> horizon-length training windows of normalized trajectories.

An episode is a time series of observations and actions (and rewards for value training). A
window is H rows [action, observation], `stride` steps apart (1: consecutive steps; K > 1: every
K-th step, the "jumpy" subgoal sequences a high-level planner learns). Padding rule "none" keeps
windows inside episodes (shorter episodes are skipped); "edge" lets windows run past the end,
padding with the final observation and a zero action (the robot standing still at the end).

Loaders (`path -> list[Episode]`) are looked up by registered name or "module:function" path,
so environment packages can plug in their own hdf5 readers.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from diffuser_core.data.normalization import MIN_SCALE, TrajectoryNormalizer

EpisodeLoader = Callable[[str], "list[Episode]"]
_LOADERS: dict[str, EpisodeLoader] = {}


@dataclass
class Episode:
    """One continuous run: observations (T, obs_dim), actions (T, action_dim), rewards (T,)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray | None = None

    def __post_init__(self):
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        length = self.observations.shape[0]
        if self.observations.ndim != 2 or self.actions.ndim != 2 or self.actions.shape[0] != length:
            raise ValueError(f"episode needs observations (T, obs_dim) and actions (T, action_dim) "
                             f"with equal T, got {self.observations.shape} and {self.actions.shape}")
        if self.rewards is not None:
            self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
            if self.rewards.shape[0] != length:
                raise ValueError(f"episode rewards have length {self.rewards.shape[0]}, expected {length}")

    def __len__(self) -> int:
        return self.observations.shape[0]


def register_loader(name: str):
    """Decorator: make an episode loader available to `resolve_loader(name)` and the CLI."""
    def decorate(loader: EpisodeLoader) -> EpisodeLoader:
        _LOADERS[name] = loader
        return loader
    return decorate


def resolve_loader(spec: str) -> EpisodeLoader:
    """A registered loader name, or "package.module:function"."""
    if spec in _LOADERS:
        return _LOADERS[spec]
    if ":" not in spec:
        raise ValueError(f"unknown dataset loader {spec!r}: use one of {sorted(_LOADERS)} "
                         f"or 'package.module:function'")
    module_name, function_name = spec.split(":", 1)
    try:
        loader = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load dataset loader {spec!r}: {error}") from error
    if not callable(loader):
        raise ValueError(f"dataset loader {spec!r} is not callable")
    return loader


@register_loader("hdf5")
def load_hdf5_episodes(path: str) -> list[Episode]:
    """D4RL-layout hdf5 (observations, actions, rewards, terminals, timeouts), split into
    episodes after every terminal or timeout step (a trailing unfinished part is kept)."""
    from diffuser_core.data.d4rl_hdf5 import load_d4rl_hdf5, split_episodes

    return [Episode(e["observations"], e["actions"], e.get("rewards"))
            for e in split_episodes(load_d4rl_hdf5(path), keep_incomplete=True)]


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """G_s = sum_k discount^k r_{s+k} to the end of the episode, for every start s."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for step in reversed(range(len(rewards))):
        running = rewards[step] + discount * running
        returns[step] = running
    return returns.astype(np.float32)


def fit_normalizer(episodes: list[Episode], kind: str = "limits",
                   min_scale: float = MIN_SCALE) -> TrajectoryNormalizer:
    """Fit a trajectory normalizer to all steps of all episodes (see TrajectoryNormalizer.fit)."""
    if not episodes:
        raise ValueError("cannot fit a normalizer to zero episodes")
    return TrajectoryNormalizer.fit(np.concatenate([e.observations for e in episodes]),
                                    np.concatenate([e.actions for e in episodes]), kind, min_scale)


def window_span(horizon: int, stride: int) -> int:
    """Env steps a window of `horizon` states `stride` steps apart covers, both ends included."""
    return (horizon - 1) * stride + 1


class SequenceDataset(Dataset):
    """Windows of H normalized transitions `stride` steps apart:
    item {"trajectories": (H, action_dim + obs_dim)}."""

    def __init__(self, episodes: list[Episode], horizon: int, normalizer: TrajectoryNormalizer,
                 padding: str = "none", stride: int = 1):
        if padding not in ("none", "edge"):
            raise ValueError(f"padding must be 'none' or 'edge', got {padding!r}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        self.horizon, self.normalizer, self.padding, self.stride = horizon, normalizer, padding, stride
        self.span = window_span(horizon, stride)
        self.episodes = [e for e in episodes if padding == "edge" or len(e) >= self.span]
        if not self.episodes:
            raise ValueError(f"no episode is at least {self.span} steps long (horizon={horizon}, "
                             f"stride={stride}, padding='none')")
        for episode in self.episodes:
            if (episode.actions.shape[1], episode.observations.shape[1]) != (
                    normalizer.action_dim, normalizer.observation_dim):
                raise ValueError("episode dimensions do not match the normalizer's")
        self.trajectories = [self._normalized_rows(e) for e in self.episodes]
        self.windows = [(index, start) for index, episode in enumerate(self.episodes)
                        for start in range(len(episode) - self.span + 1 if padding == "none" else len(episode))]

    def _normalized_rows(self, episode: Episode) -> np.ndarray:
        rows = np.concatenate([episode.actions, episode.observations], axis=1)
        if self.padding == "edge":
            still = np.concatenate([np.zeros_like(episode.actions[-1]), episode.observations[-1]])
            rows = np.concatenate([rows, np.repeat(still[None], self.span - 1, axis=0)])
        return np.ascontiguousarray(self.normalizer.normalize(rows), dtype=np.float32)

    @property
    def action_dim(self) -> int:
        return self.normalizer.action_dim

    @property
    def observation_dim(self) -> int:
        return self.normalizer.observation_dim

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode, start = self.windows[index]
        rows = self.trajectories[episode][start:start + self.span:self.stride]
        return {"trajectories": torch.from_numpy(np.ascontiguousarray(rows))}


class ValueDataset(SequenceDataset):
    """Windows plus the discounted return from the window's start: item adds {"values": ()}."""

    def __init__(self, episodes: list[Episode], horizon: int, normalizer: TrajectoryNormalizer,
                 padding: str = "none", discount: float = 0.99, stride: int = 1):
        if any(e.rewards is None for e in episodes):
            raise ValueError("value training needs rewards in every episode")
        super().__init__(episodes, horizon, normalizer, padding, stride)
        self.returns = [discounted_returns(e.rewards, discount) for e in self.episodes]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(index)
        episode, start = self.windows[index]
        item["values"] = torch.tensor(self.returns[episode][start])
        return item
