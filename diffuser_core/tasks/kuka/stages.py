"""Kuka goals stage by stage, as the paper's evaluation runs them, for the evaluation (a pybullet
world) and the arm planner (an arm over ROS) alike.

A stage plans H states from the current state (the start inpainted) toward the next goal relation
that does not hold yet (none for unconditional stacking), with the stage's guides and, when asked,
the kinematic refinement; then the plan's first `replan_every` steps (0: all H − 1) are executed. A
goal has a budget of `stages` whole plans of steps, and may end early once every relation holds.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from diffuser_core.planning.planner import Planner
from diffuser_core.tasks.kuka.relation_guides import stage_guides

from .kinematics import ArmKinematics
from .refine import RefineConfig, refine_plan
from .tasks import (
    ATTACHED_COLUMNS,
    BLOCK_NAMES,
    DEFAULT_TOLERANCE,
    GRIP_THRESHOLD,
    Relation,
    StackRule,
    attached_flags,
    held_blocks,
    placement_order,
    score,
    stacked_relations,
)


@dataclass(frozen=True)
class StageSettings:
    """grasp_guide: weight of the grasp guide (0: off); keep_built: unconditional stacking resists
    unstacking; refine: kinematic refinement of each plan; grip_threshold: a planned attached flag
    above it grips; replan_every: 0 runs each plan whole, k its first k steps; stages: the goal's
    budget in whole plans of steps; stop_when_done: end once the goal holds; samples: plans sampled
    per stage in one batch, the one that makes most of the goal hold at its own end kept."""

    grasp_guide: float = 0.0
    keep_built: bool = False
    refine: bool = False
    grip_threshold: float = GRIP_THRESHOLD
    replan_every: int = 0
    stages: int = 3
    stop_when_done: bool = False
    samples: int = 1

    def __post_init__(self):
        if not (math.isfinite(self.grasp_guide) and self.grasp_guide >= 0):
            raise ValueError(f"grasp_guide must be >= 0, got {self.grasp_guide}")
        if not 0.0 < self.grip_threshold < 1.0:
            raise ValueError(f"grip_threshold must be in (0, 1), got {self.grip_threshold}")
        if not isinstance(self.replan_every, int) or self.replan_every < 0:
            raise ValueError(f"replan_every must be an integer >= 0, got {self.replan_every!r}")
        if not isinstance(self.stages, int) or self.stages < 1:
            raise ValueError(f"stages must be a positive integer, got {self.stages!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be a positive integer, got {self.samples!r}")

    @classmethod
    def from_parameters(cls, p: dict) -> "StageSettings":
        """The settings of an arm planner's parameters (the node's, or a scenario YAML's): a goal
        ends once it holds, within `max_stages` whole plans."""
        return cls(p["grasp_guide"], p["keep_built"], p["refine"], p["grip_threshold"], p["replan_every"],
                   p["max_stages"], stop_when_done=True, samples=p["samples"])


def grip_command(planned_state: np.ndarray, threshold: float) -> str | bool:
    """The block a planned state holds (highest attached flag above `threshold`), else False."""
    index = int(held_blocks(planned_state, threshold))
    return BLOCK_NAMES[index] if index >= 0 else False


def next_relation(relations: list[Relation], state: np.ndarray, rule: StackRule = DEFAULT_TOLERANCE
                  ) -> Relation | None:
    """The first goal relation, in placement order, that does not hold in `state` under `rule`
    (None: all hold)."""
    holding = stacked_relations(state, rule)
    return next((relation for relation in placement_order(relations) if relation not in holding), None)


def plan_progress_rank(task: str, relations: list[Relation], target: Relation | None,
                       rule: StackRule = DEFAULT_TOLERANCE):
    """A planner rank ((N, H, 39) plans -> (N,) costs) keeping the plan whose own last state holds the
    stage's target relation, then most of the goal (the tallest tower for unconditional stacking)."""
    def cost(plan: np.ndarray) -> float:
        last = plan[-1]
        holds_target = target is not None and target in stacked_relations(last, rule)
        return -(100.0 * holds_target + score(last, task, relations, rule)[2])

    return lambda observations: np.array([cost(plan) for plan in observations])


class StagePlan(NamedTuple):
    observations: np.ndarray  # (H, 39) the stage's plan (refined when asked), robot units
    denoising_steps: int
    plan_ms: float  # sampling and refinement
    refine_ms: float = 0.0  # of which the refinement


def plan_stage(planner: Planner, state: np.ndarray, target: Relation | None, *, grasp_guide: float = 0.0,
               keep_built: bool = False, refine: bool = False, grip_threshold: float = GRIP_THRESHOLD,
               kinematics: ArmKinematics | None = None, toward=None, samples: int = 1, rank=None) -> StagePlan:
    """One stage's plan from `state` toward `target` (None: unconditional stacking) with the stage's
    guides (guides.stage_guides; `toward`: its relation guide factory, default the analytic one),
    refined (refine.refine_plan) when asked; `kinematics`: the arm's (default the simulated iiwa's);
    `samples` plans in one batch, `rank` (plan_progress_rank) keeping one.
    A planner of states several control steps apart (a hierarchy.HierarchicalPlanner) is guided and
    refined on those states, then filled in."""
    started = time.perf_counter()
    stride = getattr(planner, "stride", 1)
    guides = stage_guides(target, planner.normalizer, grasp_guide, keep_built_state=state if keep_built else None,
                          kinematics=kinematics, stride=stride, toward=toward)
    result = planner.plan(state, guides=guides, candidates=samples, rank=rank)
    observations = result.observations if stride == 1 else result.subgoals
    if not np.all(np.isfinite(observations)):  # never a command for the arm; a goal aborts on it
        raise ValueError("the sampled plan has non-finite values (a guide scale too large for the model?)")
    refine_started = time.perf_counter()
    if refine:
        observations = refine_plan(observations, target, RefineConfig.at_stride(stride, grip_threshold=grip_threshold),
                                   kinematics=kinematics).observations
    refine_ms = 1000 * (time.perf_counter() - refine_started)
    if stride > 1:
        observations = hold_between(planner.fill(observations), observations, stride)
    return StagePlan(observations, result.denoising_steps, 1000 * (time.perf_counter() - started), refine_ms)


def hold_between(dense: np.ndarray, states: np.ndarray, stride: int) -> np.ndarray:
    """A filled-in plan's attached flags between two planned states: held only where both hold, so
    a grip starts where its planned state has the tool on the block and a release happens where its
    planned state put the block down (interpolated flags would let go halfway up the next move)."""
    dense = np.array(dense, copy=True)
    flags = attached_flags(states)
    between = np.minimum(flags[:-1], flags[1:])  # (n - 1, blocks)
    for offset in range(1, stride):
        dense[offset:len(dense) - 1:stride, ATTACHED_COLUMNS] = between
    return dense


def warm_up(planner: Planner, settings: "StageSettings", kinematics: ArmKinematics | None = None) -> None:
    """One throw-away stage (guides and refinement as `settings` say) from the middle of the model's
    state range, so a goal's first stage does not pay for first-call allocations."""
    middle = planner.normalizer.unnormalize(np.zeros(planner.normalizer.action_dim + planner.observation_dim))
    plan_stage(planner, middle[planner.normalizer.action_dim:], None, grasp_guide=settings.grasp_guide,
               refine=settings.refine, grip_threshold=settings.grip_threshold, kinematics=kinematics)
    planner.reset()


class Stage(NamedTuple):
    target: Relation | None  # the relation this stage places (None: unconditional stacking)
    observations: np.ndarray  # the states to execute: the plan's state 0 (where it starts) to its last step
    plan: StagePlan  # the whole plan
    whole: bool  # the whole plan runs (the arm settles after it)
    held: str | None  # the block the executed part ends gripping


class StageRunner:
    """The stages of one goal: next_stage(state) plans the next one, or says the goal has ended."""

    def __init__(self, planner: Planner, settings: StageSettings, task: str, relations: list[Relation],
                 kinematics: ArmKinematics | None = None, rule: StackRule = DEFAULT_TOLERANCE, toward=None,
                 forward_only: bool = False):
        self.planner, self.settings, self.task, self.relations = planner, settings, task, list(relations)
        self.kinematics, self.rule, self.toward = kinematics, rule, toward
        # forward_only: each stage targets the goal relation of a pointer that only moves on (once its
        # relation was seen in an executed state, `observe`), as the reference's progress does; else the
        # first goal relation that does not hold now
        self.forward_only, self.pointer = forward_only, 0
        self.steps_per_plan = planner.horizon - 1  # a plan's first state is the state it starts from
        self.budget = settings.stages * self.steps_per_plan
        self.executed_steps = 0
        self.plans = 0

    def target(self, state: np.ndarray) -> Relation | None:
        """The relation the next stage places (None: unconditional stacking)."""
        if not self.relations:
            return None
        if self.forward_only:
            return self.relations[min(self.pointer, len(self.relations) - 1)]
        return next_relation(self.relations, state, self.rule)

    def observe(self, states) -> None:
        """Move the forward-only pointer past each goal relation seen, in order, in executed `states`."""
        for state in states:
            holding = stacked_relations(state, self.rule)
            while self.pointer < len(self.relations) and self.relations[self.pointer] in holding:
                self.pointer += 1

    def progress(self, state: np.ndarray) -> tuple[int, int, float]:
        """(satisfied, total, score 0-100) of the goal in `state`."""
        return score(state, self.task, self.relations, self.rule)

    def next_stage(self, state: np.ndarray) -> Stage | None:
        """The next stage from `state`, or None once the step budget is spent (or the goal holds,
        with stop_when_done)."""
        settings = self.settings
        if self.executed_steps >= self.budget:
            return None
        if settings.stop_when_done and self.progress(state)[2] == 100.0:
            return None
        target = self.target(state)
        plan = plan_stage(self.planner, state, target, grasp_guide=settings.grasp_guide,
                          keep_built=settings.keep_built, refine=settings.refine,
                          grip_threshold=settings.grip_threshold, kinematics=self.kinematics,
                          toward=self.toward, samples=settings.samples,
                          rank=plan_progress_rank(self.task, self.relations, target, self.rule))
        steps = min(settings.replan_every or self.steps_per_plan, self.steps_per_plan,
                    self.budget - self.executed_steps)
        self.executed_steps += steps
        self.plans += 1
        executed = plan.observations[:steps + 1]
        return Stage(target, executed, plan, steps == self.steps_per_plan,
                     grip_command(executed[-1], settings.grip_threshold) or None)
