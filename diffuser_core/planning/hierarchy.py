"""Hierarchical planning with diffusion ("Simple Hierarchical Planning with Diffusion", Chen et al.
2024): a high-level Diffuser, trained on states `stride` (K) env steps apart, plans the subgoals
from the start to the goal; every segment between two consecutive subgoals is then made dense.

The network sees sequences K times shorter than a flat plan of the same span, so a long route
is a short, cheap sequence to learn and to sample. Two ways to fill the segments:
- `HermiteSegments`: cubic Hermite interpolation through the subgoals' positions and velocities
  (a state layout with velocity dims), or `LinearSegments` (any state) - no second model;
- `DiffuserSegments`: a low-level Diffuser of horizon K + 1 with both ends inpainted, all segments
  in one batch of network calls.
Either way each segment starts and ends exactly on its subgoals, so the stitched plan is continuous.
"""
from __future__ import annotations

import math
import time
from typing import Protocol, Sequence

import numpy as np

from diffuser_core.planning.planner import Planner, PlannerConfig, PlanResult

SEGMENT_FILLERS = ("linear", "hermite")  # interpolations between subgoals (no second model)


class Segments(Protocol):
    """Turns subgoals (n, obs_dim) K steps apart into dense (observations, actions) of
    (n - 1) K + 1 steps whose every K-th state is a subgoal."""

    def densify(self, subgoals: np.ndarray, actions: np.ndarray, stride: int
                ) -> tuple[np.ndarray, np.ndarray, int]: ...


def _held_actions(actions: np.ndarray, stride: int) -> np.ndarray:
    """Each subgoal's action held over the K steps that follow it (the last subgoal's stands alone)."""
    return np.concatenate([np.repeat(actions[:-1], stride, axis=0), actions[-1:]], axis=0)


class LinearSegments:
    """Straight lines between consecutive subgoals, in every state dimension."""

    def densify(self, subgoals, actions, stride):
        """(observations, actions, 0 network calls)."""
        fractions = np.arange(stride) / stride
        starts, ends = subgoals[:-1, None], subgoals[1:, None]
        dense = (starts + fractions[None, :, None] * (ends - starts)).reshape(-1, subgoals.shape[1])
        return (np.concatenate([dense, subgoals[-1:]]).astype(np.float32),
                _held_actions(actions, stride), 0)


class HermiteSegments:
    """Cubic Hermite curves through the subgoals' positions with their velocities as tangents: the
    dense velocities are the curves' derivatives, so positions and velocities agree. `dt` is the
    env step in the velocities' time unit."""

    def __init__(self, position_dims: Sequence[int], velocity_dims: Sequence[int], dt: float):
        self.position_dims, self.velocity_dims = list(position_dims), list(velocity_dims)
        if len(self.position_dims) != len(self.velocity_dims) or not self.position_dims:
            raise ValueError("HermiteSegments needs one velocity dim per position dim")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"HermiteSegments dt must be > 0, got {dt}")
        self.dt = dt

    def densify(self, subgoals, actions, stride):
        """(observations, actions, 0 network calls)."""
        duration = stride * self.dt
        s = (np.arange(stride) / stride)[None, :, None]
        p0, p1 = subgoals[:-1, None, self.position_dims], subgoals[1:, None, self.position_dims]
        m0 = subgoals[:-1, None, self.velocity_dims] * duration
        m1 = subgoals[1:, None, self.velocity_dims] * duration
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
        dense = LinearSegments().densify(subgoals, actions, stride)[0][:-1].reshape(
            len(subgoals) - 1, stride, -1)
        dense[..., self.position_dims] = h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1
        dense[..., self.velocity_dims] = (d00 * p0 + d10 * m0 + d01 * p1 + d11 * m1) / duration
        dense[:, 0] = subgoals[:-1]  # exact, not up to rounding
        observations = np.concatenate([dense.reshape(-1, subgoals.shape[1]), subgoals[-1:]])
        return observations.astype(np.float32), _held_actions(actions, stride), 0


def interpolated_segments(kind: str, position_dims: Sequence[int], velocity_dims: Sequence[int], dt: float):
    """The interpolation named `kind` (one of SEGMENT_FILLERS) for a state layout of positions and
    their velocities (units per `dt`'s time unit)."""
    if kind not in SEGMENT_FILLERS:
        raise ValueError(f"segments must be one of {SEGMENT_FILLERS}, got {kind!r}")
    return HermiteSegments(position_dims, velocity_dims, dt) if kind == "hermite" else LinearSegments()


class DiffuserSegments:
    """A low-level Diffuser of horizon K + 1 fills every segment, both ends inpainted, all segments
    in one batch. Its plan length must be K + 1."""

    def __init__(self, planner: Planner):
        self.planner = planner

    def densify(self, subgoals, actions, stride):
        """(observations, actions, network calls)."""
        if self.planner.horizon != stride + 1:
            raise ValueError(f"a low-level model for stride {stride} must plan {stride + 1} states, "
                             f"this one plans {self.planner.horizon}")
        observations, dense_actions, calls = self.planner.plan_between(subgoals[:-1], subgoals[1:])
        observations = np.concatenate([observations[:, :-1].reshape(-1, subgoals.shape[1]), subgoals[-1:]])
        dense_actions = np.concatenate([dense_actions[:, :-1].reshape(-1, dense_actions.shape[-1]),
                                        dense_actions[-1:, -1]])
        return observations.astype(np.float32), dense_actions.astype(np.float32), calls


class HierarchicalPlanner:
    """A high-level Planner over subgoals `stride` env steps apart and a Segments filler, behind
    the Planner interface: plan() takes and returns env-step quantities (horizons, executed steps,
    dense plans), so the replanning loops and nodes use it as they use a flat Planner."""

    def __init__(self, high_level: Planner, stride: int, segments: Segments | None = None):
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 2:
            raise ValueError(f"a hierarchical planner needs stride >= 2, got {stride!r}")
        self.high_level, self.stride = high_level, stride
        self.segments = segments or LinearSegments()

    @property
    def observation_dim(self) -> int:
        return self.high_level.observation_dim

    @property
    def action_dim(self) -> int:
        return self.high_level.action_dim

    @property
    def generator(self):
        return self.high_level.generator

    @property
    def device(self):
        return self.high_level.device

    @property
    def normalizer(self):
        return self.high_level.normalizer

    @property
    def config(self) -> PlannerConfig:
        return self.high_level.config

    @property
    def horizon(self) -> int:
        """The dense plan length of a full high-level plan, in env steps."""
        return self.dense_length(self.high_level.horizon)

    @property
    def horizon_multiple(self) -> int:
        """Any dense length is accepted (it is rounded up to whole subgoal segments)."""
        return 1

    def dense_length(self, subgoal_count: int) -> int:
        """Env steps a plan of `subgoal_count` subgoals covers, both ends included."""
        return (subgoal_count - 1) * self.stride + 1

    def subgoal_count(self, horizon: int) -> int:
        """The fewest subgoals (a length the high-level U-Net takes) covering `horizon` env steps."""
        return subgoals_covering(horizon, self.stride, self.high_level.horizon_multiple)

    def reset(self) -> None:
        """Forget the previous high-level plan."""
        self.high_level.reset()

    def fill(self, subgoals: np.ndarray) -> np.ndarray:
        """The dense plan (one state per env step) of (n, obs_dim) subgoals, e.g. after they were edited."""
        subgoals = np.asarray(subgoals, dtype=np.float32)
        return self.segments.densify(subgoals, np.zeros((len(subgoals), self.action_dim), np.float32), self.stride)[0]

    def plan(self, observation: np.ndarray, goal: np.ndarray | None = None,
             goal_dims: Sequence[int] | None = None, constraints=None, guides=None,
             executed_steps: int = 0, horizon: int | None = None, candidates: int = 1,
             rank=None) -> PlanResult:
        """Plan subgoals from `observation` to `goal`, then fill the segments. `horizon` and
        `executed_steps` are in env steps; `constraints` and `guides` act on the subgoals;
        `candidates` subgoal plans are sampled in one batch and `rank` scores them filled (dense)."""
        started = time.perf_counter()
        count = self.high_level.horizon if horizon is None else self.subgoal_count(horizon)
        dense_rank = None if rank is None else (lambda subgoals: rank(np.stack([
            self.segments.densify(plan, np.zeros((len(plan), self.high_level.action_dim), np.float32), self.stride)[0]
            for plan in subgoals])))
        high = self.high_level.plan(observation, goal, goal_dims, constraints, guides,
                                    executed_steps=round(executed_steps / self.stride), horizon=count,
                                    candidates=candidates, rank=dense_rank)
        observations, actions, calls = self.segments.densify(high.observations, high.actions, self.stride)
        return PlanResult(observations, actions, actions[0].copy(), high.denoising_steps + calls,
                          (time.perf_counter() - started) * 1e3, high.warm_started, high.chain,
                          subgoals=high.observations)


def subgoals_covering(horizon: int, stride: int, multiple: int) -> int:
    """The fewest subgoals, a multiple of `multiple`, whose plan covers `horizon` env steps."""
    wanted = max(2, math.ceil((horizon - 1) / stride) + 1)
    return int(math.ceil(wanted / multiple) * multiple)
