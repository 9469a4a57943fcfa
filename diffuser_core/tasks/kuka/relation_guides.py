"""Test-time guides for Kuka block relations (paper §5.3): "block X on block Y" as a cost on planned states.

The paper steers one unconditionally trained model with a learned relation classifier (the
reference's label: xy distance < 0.1 and higher), summed over the later half of the plan. This
project uses the analytic quantity the classifier learns instead, so no second model is trained:
over the plan's later half, the top block's centre should sit one block size straight above the
bottom block's. Relations compose by summing their costs (task compositionality, paper §4.3), and
an unconditional task has no guide at all.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.guides import CostGuide, Guide
from diffuser_core.tasks.kuka.kinematics import ArmKinematics, iiwa_kinematics
from diffuser_core.tasks.kuka.tasks import (
    BLOCK_NAMES,
    BLOCK_SIZE,
    GRIP_THRESHOLD,
    JOINT_COUNT,
    Relation,
    block_slice,
    check_relations,
    stacked_relations,
)


def position_columns(block: str, action_dim: int, block_names: Sequence[str] = BLOCK_NAMES) -> list[int]:
    """Trajectory columns (actions first) of a block's centre x, y, z in the 39-D state layout."""
    start = block_slice(list(block_names).index(block)).start
    return [action_dim + start + axis for axis in range(3)]


def attached_column(block: str, action_dim: int, block_names: Sequence[str] = BLOCK_NAMES) -> int:
    """Trajectory column (actions first) of a block's attached flag in the 39-D state layout."""
    return action_dim + block_slice(list(block_names).index(block)).stop - 1


def relation_cost(x: torch.Tensor, relation: Relation, action_dim: int, later_fraction: float = 0.5,
                  block_names: Sequence[str] = BLOCK_NAMES) -> torch.Tensor:
    """(batch,) mean over the plan's last `later_fraction` of squared xy offset plus squared
    height error (top centre − bottom centre − one block), in metres², on robot-unit x."""
    first = int(x.shape[1] * (1.0 - later_fraction))
    top = x[:, first:, position_columns(relation.top, action_dim, block_names)]
    bottom = x[:, first:, position_columns(relation.bottom, action_dim, block_names)]
    offset = top - bottom
    height_error = offset[..., 2] - BLOCK_SIZE
    return ((offset[..., :2] ** 2).sum(-1) + height_error ** 2).mean(-1)


def held_cost(x: torch.Tensor, blocks: Sequence[str], action_dim: int,
              block_names: Sequence[str] = BLOCK_NAMES) -> torch.Tensor:
    """(batch,) mean over the plan of the summed attached flags (clamped at 0) of `blocks`, on
    robot-unit x: its gradient is a constant push against picking them up."""
    flags = [x[..., attached_column(name, action_dim, block_names)] for name in blocks]
    if not flags:
        return x.new_zeros(x.shape[0])
    return torch.stack(flags, -1).clamp_min(0).sum(-1).mean(-1)


def others_held_cost(x: torch.Tensor, relations: Sequence[Relation], action_dim: int,
                     block_names: Sequence[str] = BLOCK_NAMES) -> torch.Tensor:
    """held_cost of the blocks no relation puts on top, as the reference's guide pushes on their
    attach dimensions."""
    movers = {relation.top for relation in relations}
    return held_cost(x, [name for name in block_names if name not in movers], action_dim, block_names)


def relation_guide(relations, normalizer: TrajectoryNormalizer, weight: float = 1.0,
                   later_fraction: float = 0.5, block_names: Sequence[str] = BLOCK_NAMES,
                   others_weight: float = 1.0) -> CostGuide | None:
    """A guide that rewards plans ending with every relation holding, and (`others_weight`) not
    holding a block no relation moves; None for no relations.
    Raises ValueError for unknown blocks or impossible relation sets (kuka_tasks.check_relations)."""
    relations = check_relations(relations, block_names)
    if not relations:
        return None
    if not 0.0 < later_fraction <= 1.0:
        raise ValueError(f"later_fraction must be in (0, 1], got {later_fraction}")
    action_dim = normalizer.action_dim

    def cost(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        placed = sum(relation_cost(x, relation, action_dim, later_fraction, block_names) for relation in relations)
        return placed + others_weight * others_held_cost(x, relations, action_dim, block_names)

    return CostGuide(cost, weight, normalizer)


GRIP_STEPS = 3  # the demonstrations hold still this long while the grip closes (kuka_demos)


def steps_at_stride(steps: int, stride: int) -> int:
    """A count of control steps as plan states `stride` control steps apart (at least one)."""
    return max(1, round(steps / stride))


def grasp_cost(x: torch.Tensor, kinematics: ArmKinematics, action_dim: int,
               block_names: Sequence[str] = BLOCK_NAMES, grip_steps: int = GRIP_STEPS) -> torch.Tensor:
    """(batch,) sum over plan steps where a block's planned attached flag is above 0.5 of the squared
    distance (metres²) from the tool point (forward kinematics of the planned joints) to that block's
    planned top-face centre, on robot-unit x. Only the joints receive its gradient: the arm is moved
    to where the plan holds the block, never the block to the arm."""
    tool = kinematics.tool_positions(x[..., action_dim:action_dim + JOINT_COUNT])
    cost = x.new_zeros(x.shape[0])
    for name in block_names:
        centre = x[..., position_columns(name, action_dim, block_names)].detach()
        gripped = (x[..., attached_column(name, action_dim, block_names)].detach() > GRIP_THRESHOLD).to(x.dtype)
        # the first grip_steps gripped steps take the block where it starts (plan step 0, exact by
        # inpainting), not where the plan has drifted it; later steps follow the planned carry
        picking = (gripped * (gripped.cumsum(-1) <= grip_steps)).unsqueeze(-1)
        centre = picking * centre[:, :1] + (1 - picking) * centre
        top = centre + centre.new_tensor([0.0, 0.0, BLOCK_SIZE / 2])
        cost = cost + (gripped * ((tool - top) ** 2).sum(-1)).sum(-1)
    return cost


def grasp_guide(normalizer: TrajectoryNormalizer, weight: float = 1.0, below_step: int = 10,
                kinematics: ArmKinematics | None = None, block_names: Sequence[str] = BLOCK_NAMES,
                grip_steps: int = GRIP_STEPS) -> CostGuide:
    """A test-time cost that keeps planned grips physical: wherever the plan holds a block, its
    joints put the tool on that block (the world grips only within 2 cm). It acts only at diffusion
    steps below `below_step`, once the plan has settled which block it grips when: earlier, noisy
    attached flags would pull the arm toward every block at once. Composes with relation guides.
    grip_steps: plan steps the grip takes (fewer for a model of states several control steps apart)."""
    kinematics = kinematics or iiwa_kinematics()
    action_dim = normalizer.action_dim

    def cost(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        acting = t < below_step
        if not bool(acting.any()):  # zero, still a function of x: no kinematics to differentiate
            return x[:, 0, 0] * 0.0
        return grasp_cost(x, kinematics, action_dim, block_names, grip_steps) * acting.to(x.dtype)

    return CostGuide(cost, weight, normalizer)


def keep_built_guide(state, normalizer: TrajectoryNormalizer, weight: float = 1.0,
                     block_names: Sequence[str] = BLOCK_NAMES) -> CostGuide | None:
    """For unconditional stacking (this project's addition): a push against picking up any block that
    is already part of a stack in `state` (a 39-D state), so plans add to what is built instead of
    taking it apart; None when nothing is stacked."""
    built = sorted({name for relation in stacked_relations(state) for name in (relation.top, relation.bottom)})
    if not built:
        return None
    action_dim = normalizer.action_dim
    return CostGuide(lambda x, t: held_cost(x, built, action_dim, block_names), weight, normalizer)


def stage_guides(target: Relation | None, normalizer: TrajectoryNormalizer, grasp_weight: float = 0.0,
                 keep_built_state=None, kinematics: ArmKinematics | None = None, stride: int = 1,
                 toward: Callable[[Relation, TrajectoryNormalizer], Guide] | None = None) -> list[Guide]:
    """The guides of one stage's plan: the relation guide toward `target` (none for unconditional
    stacking), with grasp_weight > 0 the grasp guide, and for unconditional stacking with
    `keep_built_state` (the current state) the keep-built guide. `kinematics`: the arm's (default the
    simulated iiwa's); `stride`: control steps between the plan's states; `toward(target, normalizer)`:
    the relation guide to use (default the analytic relation_guide; e.g. a learned classifier's)."""
    toward = toward or (lambda relation, normalizer: relation_guide([relation], normalizer))
    guides = [toward(target, normalizer)] if target is not None else []
    if target is None and keep_built_state is not None:
        guides.append(keep_built_guide(keep_built_state, normalizer))
    if grasp_weight > 0:
        guides.append(grasp_guide(normalizer, grasp_weight, kinematics=kinematics,
                                  grip_steps=steps_at_stride(GRIP_STEPS, stride)))
    return [guide for guide in guides if guide is not None]
