"""Kuka block-stacking evaluation (paper §5.3, Table 3): one model, three tasks by test-time conditions.

Protocol, as in the reference's eval scripts: each episode resets the world with its seed and makes
`stages` (3) plans of H states, each inpainting only the current state at t = 0; conditional and
rearrangement plans are guided toward the next goal relation not yet holding (one relation per
plan, as the reference guides `env.goal[progress]`). A plan runs open loop: each planned state's
7 joint angles are the position targets of one control step, and its attached flags drive the
grip (the block whose flag is highest above `grip_threshold`, within the world's grasp distance;
the reference attaches wherever the block is — see docs/kuka.md). The score is the paper's,
relations satisfied / total × 100, counted during execution as the reference does
(kuka_tasks.score_trajectory); the final scene's score is kept beside it.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from diffuser_core.planning.planner import Planner, PlannerConfig

from ...scores import episode_seeds, standard_error
from . import PAPER_SCORES
from .stages import GRIP_THRESHOLD, StageRunner, StageSettings, grip_command
from .tasks import (
    DEFAULT_TOLERANCE,
    EVAL_MODES,
    JOINT_COUNT,
    REFERENCE_REWARD_RULE,
    REFERENCE_RULE,
    STATE_DIM,
    Relation,
    StackRule,
    poses_from_state,
    released,
    sample_goal,
    score,
    score_trajectory,
)
from .world import KukaBlockWorld, KukaWorldConfig

# this project's world and rule; the reference code's (docs/kuka.md); the reference's rules with this
# project's start sector and a flange that passes through blocks (what the first "reference world" rows used)
WORLDS = ("project", "reference", "reference_sector")
REFERENCE_PLAN_STATES = 128  # the reference's plans: H = 128 states, 127 executed steps each



@dataclass
class KukaEvalConfig:
    """What to evaluate: the paper's task `mode`, episodes and seed, and the sampler settings.
    guide_scale: α of μ + αΣ∇J for the relation guides (unused by unconditional stacking).
    replan_every: 0 runs each of the `stages` plans whole (the paper); k > 0 executes only the first k
    steps of each plan and replans from the state reached, for the same stages × (H − 1) steps in all.
    grasp_distance: how close the tool must be to a block's top for the planned grip to take it (this
    project's world: 2 cm); inf attaches the planned block wherever it is, as the reference does.
    world: "project" (5 cm cubes, gripped within grasp_distance, scored by this project's on-top rule)
    or "reference" (the reference code's slabs, grip from anywhere, released blocks stopped, scored
    by its "above" rule)."""

    mode: str = "unconditional"
    episodes: int = 10
    seed: int = 0
    sampler: str = "ddim"
    denoising_steps: int | None = None
    guide_scale: float = 1.0
    n_guide_steps: int = 2
    stages: int = 3
    grip_threshold: float = GRIP_THRESHOLD
    device: str = "cpu"
    replan_every: int = 0  # 0: the paper's protocol (each plan runs whole); k: replan after k steps
    grasp_distance: float = KukaWorldConfig.grasp_distance  # inf: the reference's attach-from-anywhere
    grasp_guide: float = 0.0  # weight of kuka_guides.grasp_guide in every task; 0: off (the paper's guides only)
    refine: bool = False  # kuka_refine.refine_plan on every plan (this project's addition; off in the paper protocol)
    keep_built: bool = False  # unconditional stacking: kuka_guides.keep_built_guide (this project's addition)
    stop_when_done: bool = False  # end the episode once the goal holds, as the arm planner does (the paper: all stages)
    world: str = "project"
    classifier: str = ""  # a learned relation classifier file guides relations, as in the paper; "": the analytic guide
    backend: str = "torch"  # how the denoiser runs (diffuser_core.model.backends): torch | onnx | auto
    guide_gradient_at: str = "mean"  # "input": the reference's rule, mu + alpha sigma grad J(x_t) once per step
    samples: int = 1  # plans per stage in one batch, the one holding most of the goal at its end kept (1: the paper)

    def __post_init__(self):
        if self.mode not in EVAL_MODES:
            raise ValueError(f"kuka eval mode must be one of {EVAL_MODES}, got {self.mode!r}")
        for name in ("episodes", "n_guide_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"kuka eval {name} must be a positive integer, got {getattr(self, name)!r}")
        if not (math.isfinite(self.guide_scale) and self.guide_scale >= 0):
            raise ValueError(f"kuka eval guide_scale must be >= 0, got {self.guide_scale}")
        if not self.grasp_distance > 0:
            raise ValueError(f"kuka eval grasp_distance must be > 0 (inf allowed), got {self.grasp_distance}")
        if self.world not in WORLDS:
            raise ValueError(f"kuka eval world must be one of {WORLDS}, got {self.world!r}")
        if self.reference_rules and self.grasp_distance != KukaWorldConfig.grasp_distance:
            raise ValueError("the reference world grips from anywhere: leave grasp_distance at its default")
        self.stage_settings()  # refuses bad stage settings

    @classmethod
    def from_parameters(cls, p: dict, **fields) -> "KukaEvalConfig":
        """The evaluation of an arm planner's parameters (the node's, or a scenario YAML's): its
        sampler, guides and stages exactly as the node runs them; `fields` sets the rest (mode,
        episodes, seed, device)."""
        stages = StageSettings.from_parameters(p)
        return cls(sampler=p["sampler"], denoising_steps=p["denoising_steps"] or None, guide_scale=p["guide_scale"],
                   n_guide_steps=p["n_guide_steps"], grasp_guide=stages.grasp_guide, keep_built=stages.keep_built,
                   refine=stages.refine, grip_threshold=stages.grip_threshold, replan_every=stages.replan_every,
                   stages=stages.stages, stop_when_done=stages.stop_when_done, backend=p.get("backend", "torch"),
                   samples=stages.samples, **fields)

    def stage_settings(self) -> StageSettings:
        """How the episode's stages run (stages.StageSettings)."""
        return StageSettings(self.grasp_guide, self.keep_built, self.refine, self.grip_threshold,
                             self.replan_every, self.stages, self.stop_when_done, self.samples)

    def world_config(self) -> KukaWorldConfig:
        """The simulated world the episodes run in."""
        if self.world == "reference":
            return KukaWorldConfig.reference()
        if self.world == "reference_sector":
            return KukaWorldConfig.reference_sector()
        return KukaWorldConfig(grasp_distance=self.grasp_distance)

    def score_rule(self) -> StackRule:
        """When a block counts as on another: this project's on-top rule or the reference's "above"."""
        if self.world == "reference":
            return REFERENCE_REWARD_RULE  # its reward exactly, a block above a held one included
        return REFERENCE_RULE if self.reference_rules else DEFAULT_TOLERANCE

    @property
    def reference_rules(self) -> bool:
        """Whether the episodes run under the reference code's rules (either reference world)."""
        return self.world.startswith("reference")

    def planner_config(self, horizon: int | None = None) -> PlannerConfig:
        return PlannerConfig(sampler=self.sampler, denoising_steps=self.denoising_steps, horizon=horizon,
                             guide_scale=self.guide_scale, n_guide_steps=self.n_guide_steps, backend=self.backend,
                             guide_gradient_at=self.guide_gradient_at)


@dataclass
class KukaEpisodeResult:
    """One episode: its goal, the paper's score (counted during execution) and the final scene's."""

    seed: int
    task: str
    relations: list[Relation]
    satisfied: int
    total: int
    score: float
    final_score: float
    plan_ms: list[float]
    states: np.ndarray  # (T + 1, 39) executed states, the reset state first

    def to_dict(self) -> dict:
        return {"seed": self.seed, "task": self.task, "relations": [str(r) for r in self.relations],
                "satisfied": self.satisfied, "total": self.total, "score": self.score,
                "final_score": self.final_score, "plan_ms": [round(ms, 2) for ms in self.plan_ms]}


def execute_plan(world: KukaBlockWorld, plan_observations: np.ndarray, grip_threshold: float) -> list[np.ndarray]:
    """Run a plan open loop, one control step per planned state after the first; the states reached."""
    plan = np.asarray(plan_observations, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[1] != STATE_DIM or not np.all(np.isfinite(plan)):
        raise ValueError(f"a Kuka plan is (H, {STATE_DIM}) finite states, got {plan.shape}")
    states = []
    for planned in plan[1:]:
        world.set_joint_targets(planned[:JOINT_COUNT], grip_command(planned, grip_threshold))
        states.append(world.step(1))
    return states


def evaluate_episode(world: KukaBlockWorld, planner: Planner, config: KukaEvalConfig, seed: int,
                     toward=None) -> KukaEpisodeResult:
    """Reset with `seed`, draw the mode's goal from it, run its stages (stages.StageRunner) in the
    world, score. `toward`: the relation guide factory (default the analytic guide). In the reference
    world the episode runs as the reference's evaluation scripts run it (reference_protocol)."""
    faithful = config.world == "reference"
    task, relations = sample_goal(np.random.default_rng(seed), config.mode, reference=faithful)
    planner.reset()
    planner.generator.manual_seed(seed)
    rule = config.score_rule()
    runner = StageRunner(planner, config.stage_settings(), task, relations, rule=rule, toward=toward,
                         forward_only=faithful)
    states, plan_ms = [world.reset(seed=seed)], []
    scored = list(states)  # what the score sees: the executed states (and, faithful, the released checks)
    while (stage := runner.next_stage(states[-1])) is not None:
        plan_ms.append(stage.plan.plan_ms)
        observations = padded(stage.observations, REFERENCE_PLAN_STATES) if faithful and stage.whole else \
            stage.observations
        executed = execute_plan(world, observations, config.grip_threshold)
        states += executed
        scored += executed + ([released(executed[-1])] if faithful else [])
        runner.observe(scored[len(scored) - len(executed) - faithful:])
    satisfied, total, value = score_trajectory(scored, task, relations, rule)
    return KukaEpisodeResult(seed, task, relations, satisfied, total, value,
                             score(states[-1], task, relations, rule)[2], plan_ms, np.array(states))


def padded(plan_observations: np.ndarray, length: int) -> np.ndarray:
    """The plan held at its last state up to `length` states (the reference runs 128-state plans:
    a model of states 4 steps apart plans 125, so the arm waits 3 steps at its end)."""
    plan = np.asarray(plan_observations)
    if len(plan) >= length:
        return plan
    return np.concatenate([plan, np.repeat(plan[-1:], length - len(plan), axis=0)])


@dataclass
class KukaEvalSummary:
    checkpoint: str
    checkpoint_step: int
    config: KukaEvalConfig
    stride: int
    episodes: list[KukaEpisodeResult]
    wall_time_s: float

    @property
    def scores(self) -> np.ndarray:
        return np.array([episode.score for episode in self.episodes])

    def to_dict(self) -> dict:
        paper = PAPER_SCORES[self.config.mode]
        config = asdict(self.config)
        if math.isinf(config["grasp_distance"]):
            config["grasp_distance"] = "inf"  # JSON has no infinity
        return {"checkpoint": self.checkpoint, "checkpoint_step": self.checkpoint_step, "stride": self.stride,
                "config": config, "episodes": len(self.episodes),
                "mean_score": float(self.scores.mean()), "standard_error": standard_error(self.scores),
                "mean_final_score": float(np.mean([e.final_score for e in self.episodes])),
                "full_success_rate": float(np.mean(self.scores == 100.0)),
                "plan_ms_median": float(np.median(np.concatenate([e.plan_ms for e in self.episodes]))),
                "wall_time_s": self.wall_time_s,
                "paper_score": {"mean": paper[0], "standard_error": paper[1]},
                "per_episode": [e.to_dict() for e in self.episodes]}


def evaluate(checkpoint, config: KukaEvalConfig, progress: bool = True) -> KukaEvalSummary:
    """Evaluate a Kuka state-model checkpoint on config.episodes seeded episodes of one task. A
    model of states `stride` control steps apart plans through hierarchy.load_planner, as the arm
    planner's does: its plans are filled in linearly to one state per control step."""
    from diffuser_core.planning.loading import load_planner

    from ...checkpoint import read_checkpoint

    started = time.perf_counter()
    saved = read_checkpoint(checkpoint)[2]
    if saved.observation_dim != STATE_DIM:
        raise ValueError(f"checkpoint {checkpoint} plans {saved.observation_dim}-D states, not the Kuka {STATE_DIM}-D")
    planner = load_planner(checkpoint, config.planner_config(None), config.device)
    toward = classifier_guides(config.classifier) if config.classifier else None
    results = []
    with KukaBlockWorld(config=config.world_config()) as world:
        seeds = tqdm(episode_seeds(config.seed, config.episodes), desc=f"kuka {config.mode}", disable=not progress)
        for seed in seeds:
            results.append(evaluate_episode(world, planner, config, seed, toward))
            seeds.set_postfix(score=f"{np.mean([r.score for r in results]):.1f}")
    return KukaEvalSummary(str(checkpoint), saved.step, config, saved.stride, results, time.perf_counter() - started)


def classifier_guides(path: str):
    """The relation guide factory of a learned relation classifier file."""
    from diffuser_core.model.classifier import load_classifier
    from diffuser_core.tasks.kuka.relation_classifier import relation_classifier_guide

    classifier, classifier_normalizer, _ = load_classifier(path)
    return lambda relation, normalizer: relation_classifier_guide(classifier, classifier_normalizer, relation, normalizer)


def render_episode(states: np.ndarray, frames: int = 4, width: int = 320, height: int = 240,
                   world_config: KukaWorldConfig | None = None) -> list[np.ndarray]:
    """Pictures of an executed episode at `frames` evenly spaced steps, the first and last included
    (with 3 stages of 128 steps and 4 frames: the start and the scene after each stage)."""
    indices = np.linspace(0, len(states) - 1, frames).round().astype(int)
    with KukaBlockWorld(config=world_config) as world:
        pictures = []
        for index in indices:
            poses, _ = poses_from_state(states[index])
            world.show(states[index][:JOINT_COUNT], poses)
            pictures.append(world.render(width, height))
    return pictures
