"""Receding-horizon planning with a trained Diffuser (paper §3, §5.4).

Observe the state -> sample a plan with the start (and goal, constraints) inpainted -> execute the
first action -> replan. Warm start (paper §5.4, Fig. 7): instead of pure noise, take the previous
plan shifted by the steps executed since, re-noise it to step k = warm_start_steps and denoise
only from there. Inputs and outputs are numpy arrays in robot units; the model runs normalized.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from diffuser_core.checkpoint import load_checkpoint
from diffuser_core.config import resolve_device
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.guides import combine_guides
from diffuser_core.model.backends import accelerate, check_backend_name
from diffuser_core.model.diffusion import GaussianDiffusion
from diffuser_core.sampling.conditioning import Constraint, Inpainting, constraint_table
from diffuser_core.sampling.samplers import GuidanceConfig, check_sampler_name, make_sampler


@dataclass
class PlannerConfig:
    """Sampling settings. denoising_steps: DDIM network calls for a cold plan (None = all N; DDPM
    always uses all N). horizon: None = the checkpoint's. warm_start_steps: re-noise depth k of a
    warm start, in diffusion steps (DDPM then makes k calls, DDIM proportionally fewer)."""

    sampler: str = "ddim"
    denoising_steps: int | None = None
    horizon: int | None = None
    warm_start: bool = False
    warm_start_steps: int = 8
    eta: float = 0.0
    guide_scale: float = 0.1
    n_guide_steps: int = 1
    t_stopgrad: int = 0
    scale_grad_by_std: bool = True
    guide_gradient_at: str = "mean"  # "input": grad J at the noisy sample times sigma, once (the reference code's classifier rule)
    seed: int | None = None
    keep_chain: bool = False  # return the intermediate samples (for plots)
    threads: int | None = None  # CPU threads for torch in this process (None: torch's default)
    backend: str = "torch"  # how the denoiser runs: torch | onnx | auto (diffuser_core.model.backends)

    def __post_init__(self):
        check_sampler_name(self.sampler)
        check_backend_name(self.backend)
        for name in ("denoising_steps", "horizon"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"planner {name} must be a positive integer or None, got {value!r}")
        if self.warm_start_steps < 1:
            raise ValueError(f"planner warm_start_steps must be >= 1, got {self.warm_start_steps}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"planner threads must be a positive integer or None, got {self.threads!r}")
        if self.eta < 0:
            raise ValueError(f"planner eta must be >= 0, got {self.eta}")
        self.guidance()  # validates the guidance fields

    def guidance(self) -> GuidanceConfig:
        """The guidance fields as the samplers' GuidanceConfig."""
        return GuidanceConfig(self.guide_scale, self.n_guide_steps, self.t_stopgrad,
                              self.scale_grad_by_std, self.guide_gradient_at)


@dataclass
class PlanResult:
    """A plan in robot units: observations (H, obs_dim), actions (H, action_dim), the action to
    execute now, how many network calls it took, wall time, and whether it was warm-started."""

    observations: np.ndarray
    actions: np.ndarray
    first_action: np.ndarray
    denoising_steps: int
    plan_time_ms: float
    warm_started: bool
    chain: np.ndarray | None = None  # (steps + 1, H, obs_dim) when config.keep_chain
    subgoals: np.ndarray | None = None  # (n, obs_dim): a hierarchical plan's high-level states


class Planner:
    """Plans with a diffusion model: start inpainted at t=0, optional goal at t=H-1."""

    def __init__(self, diffusion: GaussianDiffusion, normalizer: TrajectoryNormalizer,
                 config: PlannerConfig | None = None, device="cpu"):
        self.config = config or PlannerConfig()
        self.device = resolve_device(device)
        if self.config.threads is not None:
            # Batch-1 denoising gains little from more threads, and oversubscribed cores (a
            # simulator or trainer beside the planner) make every step slower.
            torch.set_num_threads(self.config.threads)
        self.diffusion = diffusion.to(self.device).eval()
        self.normalizer = normalizer
        if (normalizer.observation_dim, normalizer.action_dim) != (diffusion.observation_dim,
                                                                   diffusion.action_dim):
            raise ValueError("normalizer and diffusion model disagree on observation/action dims")
        if self.config.horizon is None:
            raise ValueError("PlannerConfig.horizon is required (from_checkpoint fills it in)")
        diffusion.network.check_horizon(self.config.horizon)
        self._check_steps(diffusion.n_timesteps)
        accelerate(self.diffusion, self.config.horizon, self.config.backend, self.config.threads, self.device)
        self.sampler = make_sampler(self.config.sampler, self.config.denoising_steps, self.config.eta)
        self.generator = torch.Generator(self.device)
        if self.config.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(self.config.seed)
        self._previous: torch.Tensor | None = None

    def _check_steps(self, n_timesteps: int) -> None:
        config = self.config
        if config.denoising_steps is not None and config.denoising_steps > n_timesteps:
            raise ValueError(f"denoising_steps={config.denoising_steps} exceeds the model's "
                             f"{n_timesteps} diffusion steps")
        if config.sampler == "ddpm" and config.denoising_steps not in (None, n_timesteps):
            raise ValueError("the DDPM sampler visits every diffusion step: use sampler='ddim' "
                             "for fewer denoising_steps")
        if config.warm_start and config.warm_start_steps > n_timesteps:
            raise ValueError(f"warm_start_steps={config.warm_start_steps} exceeds the model's "
                             f"{n_timesteps} diffusion steps")

    @classmethod
    def from_checkpoint(cls, path, config: PlannerConfig | None = None, device="cpu") -> "Planner":
        """Load a diffusion checkpoint; the horizon defaults to the one it was trained with."""
        device = resolve_device(device)
        diffusion, normalizer, checkpoint_config = load_checkpoint(path, device)
        return cls.for_model(diffusion, normalizer, checkpoint_config.horizon, config, device)

    @classmethod
    def for_model(cls, diffusion: GaussianDiffusion, normalizer: TrajectoryNormalizer, trained_horizon: int,
                  config: PlannerConfig | None = None, device="cpu") -> "Planner":
        """A planner for a loaded model; the horizon defaults to the one it was trained with."""
        config = config or PlannerConfig()
        if config.horizon is None:
            config = replace(config, horizon=trained_horizon)
        return cls(diffusion, normalizer, config, device)

    @property
    def observation_dim(self) -> int:
        return self.diffusion.observation_dim

    @property
    def action_dim(self) -> int:
        return self.diffusion.action_dim

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def horizon_multiple(self) -> int:
        """Plan lengths must be multiples of this (the U-Net's down-sampling)."""
        return self.diffusion.network.config.horizon_multiple

    def reset(self) -> None:
        """Forget the previous plan (the next plan starts from pure noise)."""
        self._previous = None

    def plan(self, observation: np.ndarray, goal: np.ndarray | None = None,
             goal_dims: Sequence[int] | None = None, constraints: Sequence[Constraint] | None = None,
             guides=None, executed_steps: int = 0, horizon: int | None = None, candidates: int = 1,
             rank: Callable[[np.ndarray], np.ndarray] | None = None) -> PlanResult:
        """Plan from `observation`; `goal` fixes `goal_dims` (default all) of the last state;
        `constraints` fix more entries (robot units); `guides` steer sampling; `executed_steps`
        says how far the robot moved along the previous plan (for the warm start). `horizon`
        overrides the configured one for this plan: the U-Net is fully convolutional in time, so
        one model plans any length its down-sampling divides (variable-horizon replanning).
        `candidates` plans are sampled in one batch; `rank(observations (N, H, obs)) -> (N,)` costs
        picks the cheapest (default: the first)."""
        started = time.perf_counter()
        horizon = self.horizon if horizon is None else horizon
        self.diffusion.network.check_horizon(horizon)
        mask, targets = self._inpainting_table(observation, goal, goal_dims, constraints or (), horizon)
        guide = combine_guides(guides)
        mode = torch.no_grad() if guide is not None else torch.inference_mode()
        with mode:
            inpainting = Inpainting(torch.from_numpy(mask).to(self.device),
                                    torch.from_numpy(self.normalizer.normalize(targets)).to(self.device))
            x, start_step = self._initial_sample(executed_steps, horizon, _checked_candidates(candidates))
            output = self.sampler.sample(self.diffusion, x, inpainting, start_step=start_step,
                                         guide=guide, guidance=self.config.guidance(),
                                         generator=self.generator, keep_chain=self.config.keep_chain)
            trajectories = np.where(mask, targets, self.normalizer.unnormalize(output.trajectories.cpu().numpy()))  # exact
            best = _cheapest(trajectories[..., self.action_dim:], rank)
            if self.config.warm_start:
                self._previous = output.trajectories[best:best + 1].clone()
            trajectory = trajectories[best]
            chain = None
            if output.chain is not None:
                chain = self.normalizer.unnormalize(output.chain[:, best].cpu().numpy())[..., self.action_dim:]
        trajectory = trajectory.astype(np.float32)  # start, goal and constraints exact in robot units
        actions, observations = trajectory[:, :self.action_dim], trajectory[:, self.action_dim:]
        return PlanResult(observations, actions, actions[0].copy(), output.denoising_steps,
                          (time.perf_counter() - started) * 1e3, start_step is not None, chain)

    def plan_between(self, starts: np.ndarray, ends: np.ndarray, horizon: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, int]:
        """Plans from each start to its end (both states inpainted exactly), all in one batch of
        network calls from pure noise: (observations (B, H, obs_dim), actions (B, H, action_dim),
        network calls). Used to fill the segments between a high-level plan's subgoals."""
        horizon = self.horizon if horizon is None else horizon
        self.diffusion.network.check_horizon(horizon)
        starts = np.asarray(starts, dtype=np.float32)
        ends = np.asarray(ends, dtype=np.float32)
        if starts.ndim != 2 or starts.shape != ends.shape or starts.shape[1] != self.observation_dim:
            raise ValueError(f"starts and ends must both be (batch, {self.observation_dim}), "
                             f"got {starts.shape} and {ends.shape}")
        if not (np.all(np.isfinite(starts)) and np.all(np.isfinite(ends))):
            raise ValueError("segment starts and ends must be finite")
        batch, columns = starts.shape[0], slice(self.action_dim, None)
        mask = np.zeros((horizon, self.action_dim + self.observation_dim), dtype=bool)
        mask[[0, -1], columns] = True
        targets = np.zeros((batch, *mask.shape), dtype=np.float32)
        targets[:, 0, columns], targets[:, -1, columns] = starts, ends
        with torch.inference_mode():
            inpainting = Inpainting(torch.from_numpy(mask).to(self.device),
                                    torch.from_numpy(self.normalizer.normalize(targets)).to(self.device))
            noise = torch.randn((batch, *mask.shape), generator=self.generator, device=self.device)
            output = self.sampler.sample(self.diffusion, noise, inpainting, generator=self.generator,
                                         guidance=self.config.guidance())
            trajectories = self.normalizer.unnormalize(output.trajectories.cpu().numpy())
        trajectories = np.where(mask, targets, trajectories).astype(np.float32)
        return (trajectories[..., self.action_dim:], trajectories[..., :self.action_dim],
                output.denoising_steps)

    def _initial_sample(self, executed_steps: int, horizon: int, batch: int = 1) -> tuple[torch.Tensor, int | None]:
        """Pure noise, or the previous plan shifted by executed_steps (cut or padded with its last
        state to `horizon`) and re-noised to step k, `batch` times (independent noise)."""
        shape = (batch, horizon, self.diffusion.transition_dim)
        noise = torch.randn(shape, generator=self.generator, device=self.device)
        if executed_steps < 0:
            raise ValueError(f"executed_steps must be >= 0, got {executed_steps}")
        previous = self._previous
        if not self.config.warm_start or previous is None or executed_steps >= previous.shape[1]:
            return noise, None
        rest = previous[:, executed_steps:executed_steps + horizon]
        shifted = torch.cat([rest, previous[:, -1:].expand(-1, horizon - rest.shape[1], -1)], dim=1)
        start_step = self.config.warm_start_steps - 1
        t = torch.full((batch,), start_step, dtype=torch.long, device=self.device)
        return self.diffusion.schedule.q_sample(shifted.expand(batch, -1, -1), t, noise), start_step

    def _inpainting_table(self, observation, goal, goal_dims, constraints, horizon):
        """(mask, targets) in robot units: start at t=0, goal at t=H-1, then the constraints."""
        observation = self._checked_vector("observation", observation, self.observation_dim)
        entries = [Constraint(0, tuple(range(self.observation_dim)), tuple(observation))]
        if goal is not None:
            dims = tuple(range(self.observation_dim)) if goal_dims is None else tuple(goal_dims)
            goal = np.asarray(goal, dtype=np.float32).reshape(-1)
            if goal.shape[0] == self.observation_dim and len(dims) != self.observation_dim:
                goal = goal[list(dims)]
            goal = self._checked_vector("goal", goal, len(dims))
            entries.append(Constraint(horizon - 1, dims, tuple(goal)))
        for constraint in constraints:
            if not isinstance(constraint, Constraint):
                raise ValueError(f"constraints must be Constraint objects, got {type(constraint).__name__}")
        return constraint_table([*entries, *constraints], horizon, self.action_dim,
                                self.observation_dim)

    @staticmethod
    def _checked_vector(name: str, value, size: int) -> np.ndarray:
        vector = np.asarray(value, dtype=np.float32)
        if vector.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), got {vector.shape}")
        if not np.all(np.isfinite(vector)):
            raise ValueError(f"{name} contains NaN or inf: {vector}")
        return vector


def _checked_candidates(candidates) -> int:
    if not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
    return int(candidates)


def _cheapest(observations: np.ndarray, rank) -> int:
    """The index of the candidate `rank` scores lowest (the first without a rank, or on ties)."""
    if rank is None or len(observations) == 1:
        return 0
    costs = np.asarray(rank(observations), dtype=np.float64).reshape(-1)
    if costs.shape != (len(observations),):
        raise ValueError(f"rank must give one cost per candidate ({len(observations)}), got {costs.shape}")
    return int(np.argmin(np.where(np.isnan(costs), np.inf, costs)))
