"""Physical refinement of a sampled Kuka plan: a short trajectory optimisation of its joints.

A sampled plan says which block to hold when and roughly where the arm goes, but its joints are a
few centimetres off where a grip or a placement needs them (the world grips within 2 cm; a block
must land within 2.5 cm of the one below). This project's addition, off in the paper protocol:
after sampling, move the planned joints, by gradient descent through the arm's forward kinematics,
so that

- each planned grip puts the tool on the block's top face, where the block is at that time;
- the block the relation moves is released one block above the block it goes on;
- no joint goes past its limit (the arm's controller would clip it, and the grip with it);
- the tool comes down onto and leaves a grip or a release vertically, pointing down while it holds
  a block (a tilted or sideways carry knocks blocks over), and does not turn about the vertical while
  it holds one (a block put down turned is a state the demonstrations never show: the model's later
  plans fail on it);

while the joints stay smooth and near the sampled plan. Blocks follow the physics the world runs:
a block stays where it is until the plan holds it, moves with the tool while held, and stays where
it was released, so only the joints are optimised. The block columns of the refined plan are set to
those positions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import NamedTuple, Sequence

import numpy as np
import torch

from diffuser_core.tasks.kuka.relation_guides import position_columns, steps_at_stride

from .kinematics import ArmKinematics, iiwa_kinematics
from .tasks import (
    BLOCK_NAMES,
    BLOCK_SIZE,
    GRIP_THRESHOLD,
    JOINT_COUNT,
    STATE_DIM,
    Relation,
    held_blocks,
    stacked_relations,
)

TOOL_DOWN = (0.0, 0.0, -1.0)
OPTIMISERS = ("adam", "lbfgs")
LBFGS_HISTORY = 100  # past steps L-BFGS keeps: the smoothness term is ill-conditioned, 20 left it unconverged
# Iterations for a stride-4 plan (31 states to move, not 127): on 9 first stages of the stride-4 model,
# 50 iterations left the same grip, place and vertical costs as 150 in half the time; 30 left them 2x higher.
STRIDED_ITERATIONS = 50


@dataclass(frozen=True)
class RefineConfig:
    """Weights (costs in metres², radians² or unit-vector²) and steps of the refinement.
    optimiser: "adam" (`iterations` steps of learning_rate) or "lbfgs" (L-BFGS with a strong Wolfe
    line search, at most `iterations` iterations: the costs are sums of squares, which it minimises in
    far fewer evaluations). iterations 0 turns it off. grip_steps: how many held steps at the start
    of a grip must have the tool on the block (the demonstrations hold still 3 steps while the grip
    closes). vertical_steps: the steps before and after a grip or release in which the tool stays
    over that point, and not below it. release_gap: the held block's bottom is released this far above its support."""

    iterations: int = 150
    optimiser: str = "lbfgs"
    learning_rate: float = 0.02
    grip_weight: float = 100.0
    place_weight: float = 100.0
    vertical_weight: float = 30.0
    tool_down_weight: float = 1.0
    keep_yaw_weight: float = 10.0
    limits_weight: float = 100.0
    smooth_weight: float = 0.1
    stay_weight: float = 0.01
    grip_steps: int = 3
    vertical_steps: int = 8
    release_gap: float = 0.003
    grip_threshold: float = GRIP_THRESHOLD

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and (not isinstance(value, int) or value < 0):
                raise ValueError(f"refine {field.name} must be an integer >= 0, got {value!r}")
            if field.type == "float" and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"refine {field.name} must be a finite number >= 0, got {value!r}")
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"refine optimiser must be one of {OPTIMISERS}, got {self.optimiser!r}")
        if not 0.0 < self.grip_threshold < 1.0:
            raise ValueError(f"refine grip_threshold must be in (0, 1), got {self.grip_threshold}")

    @classmethod
    def at_stride(cls, stride: int, **fields) -> "RefineConfig":
        """The refinement for plans whose states are `stride` control steps apart: the step counts
        shortened to as much time, the smoothness and stay weights rescaled so that a change of the
        same shape in time costs the same (second differences grow as stride², terms shrink as
        1/stride), and, unless given, STRIDED_ITERATIONS iterations (a quarter of the variables)."""
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"refine stride must be a positive integer, got {stride!r}")
        base = cls(**fields)
        if stride == 1:
            return base
        return replace(base, grip_steps=steps_at_stride(base.grip_steps, stride),
                       vertical_steps=steps_at_stride(base.vertical_steps, stride),
                       smooth_weight=base.smooth_weight / stride ** 3, stay_weight=base.stay_weight * stride,
                       iterations=fields.get("iterations", STRIDED_ITERATIONS))


class HeldRun(NamedTuple):
    """Plan steps start..end (inclusive) in which the plan holds `block` (an index into BLOCK_NAMES)."""

    block: int
    start: int
    end: int


def held_runs(plan: np.ndarray, threshold: float = 0.5) -> list[HeldRun]:
    """The plan's holds in time order: at each step the block with the highest attached flag, if above
    `threshold` (as kuka_eval.grip_command executes it)."""
    holding = held_blocks(plan, threshold)
    runs, start = [], 0
    for step in range(1, len(holding) + 1):
        if step == len(holding) or holding[step] != holding[start]:
            if holding[start] >= 0:
                runs.append(HeldRun(int(holding[start]), start, step - 1))
            start = step
    return runs


def block_paths(tool: torch.Tensor, start: torch.Tensor, runs: Sequence[HeldRun],
                release_gap: float) -> torch.Tensor:
    """(H, blocks, 3) block centres as the world moves them: in place until held, a top-face offset
    below the tool while held, and where the tool released it (landing release_gap lower) after."""
    top = tool.new_tensor([0.0, 0.0, BLOCK_SIZE / 2])
    landing = tool.new_tensor([0.0, 0.0, BLOCK_SIZE / 2 + release_gap])
    paths = []
    for block in range(start.shape[0]):
        pieces, position, step = [], start[block], 0
        for run in (run for run in runs if run.block == block):
            pieces += [position.expand(run.start - step, 3), tool[run.start:run.end + 1] - top]
            position, step = tool[run.end] - landing, run.end + 1
        pieces.append(position.expand(tool.shape[0] - step, 3))
        paths.append(torch.cat(pieces))
    return torch.stack(paths, 1)


def hold_length(plan: np.ndarray, block: str | None = None, threshold: float = 0.5) -> int:
    """The longest pick-and-place in a plan: steps of the longest hold (of `block`, or any) that
    starts after the plan's first step and is released before its last; 0 for none. Sampled plans
    whose attached flags flicker around the threshold have only short holds."""
    wanted = None if block is None else BLOCK_NAMES.index(block)
    lengths = [run.end - run.start + 1 for run in held_runs(plan, threshold)
               if run.start > 0 and run.end < len(plan) - 1 and wanted in (None, run.block)]
    return max(lengths, default=0)


def intended_relation(plan: np.ndarray, runs: Sequence[HeldRun], kinematics: ArmKinematics) -> Relation | None:
    """For a plan with no relation to meet (unconditional stacking): the last block it releases, on
    the clear block (nothing on it at the plan's start) nearest, in xy, to where the sampled plan
    releases it — in a tower, its top block."""
    released = [run for run in runs if run.end < len(plan) - 1]
    if not released:
        return None
    run = released[-1]
    joints = torch.as_tensor(plan[run.end, :JOINT_COUNT], dtype=torch.float32)
    tool = kinematics.tool_positions(joints).numpy()
    covered = {relation.bottom for relation in stacked_relations(plan[0])}
    clear = [i for i, name in enumerate(BLOCK_NAMES) if i != run.block and name not in covered]
    if not clear:
        return None
    starts = np.array([plan[0, position_columns(BLOCK_NAMES[i], 0)[:2]] for i in clear])
    nearest = clear[int(np.argmin(np.linalg.norm(starts - tool[:2], axis=1)))]
    return Relation(BLOCK_NAMES[run.block], BLOCK_NAMES[nearest])


def _vertical_cost(tool: torch.Tensor, step: int, point: torch.Tensor, window: int) -> torch.Tensor:
    """Within `window` steps of `step`, the tool stays over `point` (xy) and not below it (z)."""
    near = tool[max(step - window, 1):step + window + 1]
    return ((near[:, :2] - point[:2]) ** 2).sum() + (torch.relu(point[2] - near[:, 2]) ** 2).sum()


class RefinedPlan(NamedTuple):
    observations: np.ndarray  # (H, 39) the refined plan, robot units
    relation: Relation | None  # the relation its placement was refined toward
    costs: dict  # the final value of each cost term


def refine_plan(plan: np.ndarray, relation: Relation | None = None, config: RefineConfig = RefineConfig(),
                kinematics: ArmKinematics | None = None) -> RefinedPlan:
    """Refine a sampled (H, 39) plan's joints (step 0, the current state, stays) so its grips and the
    placement toward `relation` (for None: `intended_relation`) are physical. Raises ValueError for a
    plan that is not (H, 39) finite states."""
    plan = np.asarray(plan, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[1] != STATE_DIM or len(plan) < 2 or not np.all(np.isfinite(plan)):
        raise ValueError(f"a Kuka plan is (H >= 2, {STATE_DIM}) finite states, got {plan.shape}")
    kinematics = kinematics or iiwa_kinematics()
    runs = held_runs(plan, config.grip_threshold)
    relation = relation or intended_relation(plan, runs, kinematics)
    sampled = torch.as_tensor(plan[:, :JOINT_COUNT], dtype=torch.float32)
    start = torch.as_tensor(np.stack([plan[0, position_columns(name, 0)] for name in BLOCK_NAMES]), dtype=torch.float32)
    offset = torch.zeros_like(sampled[1:], requires_grad=True)
    costs = _RefineCosts(kinematics, sampled, start, runs, relation, config)
    if runs and config.iterations:
        _minimise(costs.total, offset, config)
    with torch.no_grad():
        joints = torch.cat([sampled[:1], torch.clamp(sampled[1:] + offset, kinematics.lower, kinematics.upper)])
        terms, paths = costs.terms(joints)
    refined = plan.copy()
    refined[1:, :JOINT_COUNT] = joints[1:].numpy()
    for i, name in enumerate(BLOCK_NAMES):
        refined[1:, position_columns(name, 0)] = paths[1:, i].numpy()
    return RefinedPlan(refined, relation, {name: float(value) for name, value in terms.items()})


def _minimise(total, offset: torch.Tensor, config: RefineConfig) -> None:
    """Move `offset` (in place) to lower total(offset) with the configured optimiser."""
    if config.optimiser == "lbfgs":
        optimiser = torch.optim.LBFGS([offset], lr=1.0, max_iter=config.iterations, history_size=LBFGS_HISTORY,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

        def evaluate() -> torch.Tensor:
            optimiser.zero_grad()
            cost = total(offset)
            cost.backward()
            return cost

        optimiser.step(evaluate)
        return
    optimiser = torch.optim.Adam([offset], lr=config.learning_rate)
    for _ in range(config.iterations):
        optimiser.zero_grad()
        total(offset).backward()
        optimiser.step()


class _RefineCosts:
    """The refinement's cost terms for one plan."""

    def __init__(self, kinematics, sampled, start, runs, relation, config: RefineConfig):
        self.kinematics, self.sampled, self.start, self.runs, self.config = kinematics, sampled, start, runs, config
        self.relation = None if relation is None else (BLOCK_NAMES.index(relation.top),
                                                       BLOCK_NAMES.index(relation.bottom))
        self.holding = torch.zeros(len(sampled))
        for run in runs:
            self.holding[max(run.start - config.vertical_steps, 0):run.end + config.vertical_steps + 1] = 1.0

    def terms(self, joints: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """Each cost term (named as its RefineConfig weight) for (H, 7) joints, and the block paths."""
        config, last = self.config, len(joints) - 1
        tool, rotation = self.kinematics.tool_frames(joints)
        paths = block_paths(tool, self.start, self.runs, config.release_gap)
        zero = tool.new_zeros(())
        grip, vertical, keep_yaw = zero, zero, zero
        top = tool.new_tensor([0.0, 0.0, BLOCK_SIZE / 2])
        heading = rotation[..., 0]  # the flange's x axis: with the tool down, its turn about the vertical
        for run in self.runs:
            keep_yaw = keep_yaw + ((heading[run.start:run.end + 1] - heading[run.start]) ** 2).sum()
            if run.start > 0:  # a hold already on at the plan's start has no grip to make
                grip_point = paths[run.start - 1, run.block] + top
                gripping = tool[run.start:min(run.start + config.grip_steps, run.end + 1)]
                grip = grip + ((gripping - grip_point) ** 2).sum()
                vertical = vertical + _vertical_cost(tool, run.start, grip_point, config.vertical_steps)
            if run.end < last:
                vertical = vertical + _vertical_cost(tool, run.end, tool[run.end], config.vertical_steps)
        place = zero
        if self.relation is not None:
            moved, support = self.relation
            place = ((paths[-1, moved] - paths[-1, support] - tool.new_tensor([0.0, 0.0, BLOCK_SIZE])) ** 2).sum()
        tool_down = (self.holding * ((rotation[..., 2] - tool.new_tensor(TOOL_DOWN)) ** 2).sum(-1)).sum()
        change = joints - self.sampled
        smooth = ((change[2:] - 2 * change[1:-1] + change[:-2]) ** 2).sum()
        kinematics = self.kinematics
        limits = (torch.relu(joints[1:] - kinematics.upper) ** 2 + torch.relu(kinematics.lower - joints[1:]) ** 2).sum()
        terms = {"grip": grip, "place": place, "vertical": vertical, "tool_down": tool_down,
                 "keep_yaw": keep_yaw, "limits": limits, "smooth": smooth, "stay": (change ** 2).sum()}
        return terms, paths

    def total(self, offset: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the terms for the joints sampled + offset (step 0 fixed)."""
        terms, _ = self.terms(torch.cat([self.sampled[:1], self.sampled[1:] + offset]))
        return sum(getattr(self.config, f"{name}_weight") * value for name, value in terms.items())
