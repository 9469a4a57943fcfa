"""Loading a planner from a checkpoint: a flat Planner, or a HierarchicalPlanner when the model plans
subgoals (its stride > 1); and the settings a robot setting gives its planner (PlanningSettings)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from diffuser_core.checkpoint import load_checkpoint, read_checkpoint
from diffuser_core.config import resolve_device
from diffuser_core.model.backends import BACKEND_MEANING, BACKENDS
from diffuser_core.planning.hierarchy import (
    SEGMENT_FILLERS,
    DiffuserSegments,
    HierarchicalPlanner,
    Segments,
    subgoals_covering,
)
from diffuser_core.planning.choice import CHOICE_MODELS, PlanChoice, load_rank
from diffuser_core.planning.horizon import HorizonSizing
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.sampling.samplers import SAMPLER_NAMES
from diffuser_core.settings import check_settings, setting


@dataclass(frozen=True)
class PlanningSettings:
    """How a robot's planner samples (the planner node's parameters of the same names; a scenario
    file sets them; these defaults are the default scenario's, and a test keeps the two equal)."""

    segments: str = setting("linear", "hierarchical checkpoints without a low-level model: how subgoals are joined, "
                                      "linear (straight lines in every state entry) | hermite (curves through "
                                      "positions, velocities as tangents)", choices=SEGMENT_FILLERS)
    horizon: int = setting(0, "plan length in steps; 0: the checkpoint's", 0, 100000)
    sampler: str = setting("ddim", "reverse process: ddim | ddpm", choices=SAMPLER_NAMES)
    denoising_steps: int = setting(16, "DDIM network calls for a cold plan; 0: all of the model's diffusion steps",
                                   0, 10000)
    warm_start: bool = setting(True, "start replans from the shifted previous plan, re-noised (paper section 5.4)")
    warm_start_steps: int = setting(16, "re-noising depth of a warm start, in diffusion steps", 1, 10000)
    threads: int = setting(1, "torch CPU threads for planning; 0: torch's default", 0, 1024)
    seed: int = setting(0, "seed of the planner's noise", 0, 2**31 - 1)
    backend: str = setting("auto", BACKEND_MEANING, choices=BACKENDS)
    steps_to_go: str = setting("", "a steps-to-go model of the offline data (.safetensors, bench/train_steps_to_go.py) "
                                   "sizing each plan to the goal; '': the checkpoint's horizon")
    plan_candidates: int = setting(1, "plans sampled in one batch per planning tick; choose_by keeps one (a map "
                                      "that samples its own overrides both)", 1, 1024)
    choose_by: str = setting("", "the model of the offline data that keeps one of the candidates: density (of "
                                 "visited states) | reachability; '': the first", choices=CHOICE_MODELS)
    choice_model: str = setting("", "choose_by's model file (.safetensors, python -m diffuser_core.model.visit_density)")

    def __post_init__(self):
        check_settings(self)
        if bool(self.choose_by) != bool(self.choice_model):
            raise ValueError("choose_by and choice_model go together (both set, or both empty)")

    def horizon_sizing(self, resolve=str) -> HorizonSizing:
        """How plans to the goal are sized: by the steps-to-go model (its path through `resolve`), or fixed."""
        return HorizonSizing("learned", str(resolve(self.steps_to_go))) if self.steps_to_go else HorizonSizing()

    def plan_choice(self, resolve=str) -> PlanChoice | None:
        """The choice among plan_candidates (its model file's path through `resolve`); None: the first plan."""
        if not self.choose_by:
            return None
        return PlanChoice(self.plan_candidates, load_rank(self.choose_by, str(resolve(self.choice_model))))

    def planner_config(self, **others) -> PlannerConfig:
        """The sampler settings (0s mean the checkpoint's or torch's own); `others` on top."""
        return PlannerConfig(sampler=self.sampler, denoising_steps=self.denoising_steps or None,
                             horizon=self.horizon or None, warm_start=self.warm_start,
                             warm_start_steps=self.warm_start_steps, seed=self.seed, threads=self.threads or None,
                             backend=self.backend, **others)


def checkpoint_stride(path) -> int:
    """The stride a checkpoint's model was trained with (1: a flat, dense model)."""
    return read_checkpoint(path)[2].stride


def load_planner(path, config: PlannerConfig | None = None, device="cpu",
                 segments: Segments | None = None, low_level=None):
    """The planner a checkpoint calls for: a flat Planner, or a HierarchicalPlanner when the model
    plans subgoals (stride > 1; `config.horizon` is then in env steps, rounded up to whole segments). `low_level` (a checkpoint path) fills segments with a low-level
    Diffuser instead of `segments` (default: straight lines)."""
    device = resolve_device(device)
    diffusion, normalizer, saved = load_checkpoint(path, device)
    stride = saved.stride
    if stride > 1 and config is not None and config.horizon is not None:  # env steps -> subgoals
        config = replace(config, horizon=subgoals_covering(config.horizon, stride, saved.unet.horizon_multiple))
    planner = Planner.for_model(diffusion, normalizer, saved.horizon, config, device)
    if stride == 1:
        if low_level is not None:
            raise ValueError(f"{path} is a flat model: a low-level model applies to hierarchical ones")
        return planner
    if low_level is not None:
        low_config = replace(planner.config, horizon=stride + 1, warm_start=False, guide_scale=0.0)
        segments = DiffuserSegments(Planner.from_checkpoint(low_level, low_config, device))
    return HierarchicalPlanner(planner, stride, segments)
