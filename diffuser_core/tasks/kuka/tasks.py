"""Block-stacking goals of Diffuser §5.3: on-top relations, their geometric check, and the score.

The three evaluation modes: unconditional stacking (any 4-block tower), conditional stacking (a
tower in a given order) and rearrangement (given on-top relations from a random start). A task is
the pair (task, relations) of the StackBlocks action: task "stack" with no relations is
unconditional, "stack" with a full tower's relations is conditional, "rearrange" takes any valid
set. Score = correct placements / possible placements × 100 (paper: reward / 3 × 100).

This module also fixes the world's vocabulary (block names, 39-D state layout) so that planners
can read states and score plans without importing pybullet.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import quat2mat

BLOCK_NAMES = ("red", "green", "blue", "yellow")
BLOCK_SIZE = 0.05  # cube edge, metres
JOINT_COUNT = 7
BLOCK_STATE_DIM = 8  # position (3), quaternion x, y, z, w (4), attached flag (1)
STATE_DIM = JOINT_COUNT + len(BLOCK_NAMES) * BLOCK_STATE_DIM  # 39
GRIP_THRESHOLD = 0.5  # a planned attached flag above this grips the block
CONTROL_DT = 10 / 240  # s between the demonstrations' states (the world's control period, 24 Hz)
TASKS = ("stack", "rearrange")
EVAL_MODES = ("unconditional", "conditional", "rearrange")


@dataclass(frozen=True)
class Relation:
    """Goal or fact: block `top` rests directly on block `bottom`."""

    top: str
    bottom: str

    def __str__(self) -> str:
        return f"{self.top} on {self.bottom}"


@dataclass(frozen=True)
class StackTolerance:
    """How exactly a block must sit on another to count as stacked (metres, degrees)."""

    block_size: float = BLOCK_SIZE
    xy: float = 0.5 * BLOCK_SIZE  # centres at most half a block apart horizontally
    z: float = 0.25 * BLOCK_SIZE  # height difference within this of one block size
    max_tilt_deg: float = 15.0  # each block has a face within this angle of horizontal

    def rests(self, offset: np.ndarray, top_quat, bottom_quat) -> bool:
        """Whether a block `offset` (top centre − bottom centre) from another rests directly on it."""
        return bool(np.linalg.norm(offset[:2]) < self.xy and abs(offset[2] - self.block_size) < self.z
                    and is_flat(top_quat, self.max_tilt_deg) and is_flat(bottom_quat, self.max_tilt_deg))

    def tower(self, relations: set[Relation]) -> int:
        """Unconditional stacking's count: placements in the tallest tower."""
        return tower_placements(relations)

    def __post_init__(self):
        for name in ("block_size", "xy", "z", "max_tilt_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"StackTolerance.{name} must be > 0, got {getattr(self, name)}")
        if self.max_tilt_deg >= 45:
            raise ValueError(f"max_tilt_deg must be < 45 (a cube always has a face within 45°), "
                             f"got {self.max_tilt_deg}")


DEFAULT_TOLERANCE = StackTolerance()


@dataclass(frozen=True)
class AboveRule:
    """The reference code's count (StackEnv.compute_reward): block i is "above" j when neither is
    held, their centres are less than `xy` apart horizontally and i is more than `dz` higher, at
    any height and tilt. Unconditional stacking counts the most blocks one block is above."""

    xy: float = 0.2  # the reference's slab width
    dz: float = 0.05
    # the reference's reward reads the upper block's attached flag twice (a typo), so a block above a
    # held one counts there: True keeps that; False wants neither held
    lower_may_be_held: bool = False

    def rests(self, offset: np.ndarray, top_quat, bottom_quat) -> bool:
        """Whether a block `offset` (top centre − bottom centre) from another counts as above it."""
        return bool(np.linalg.norm(offset[:2]) < self.xy and offset[2] > self.dz)

    def tower(self, relations: set[Relation]) -> int:
        """Unconditional stacking's count: the most blocks one block is above."""
        return max((sum(r.top == top for r in relations) for top in {r.top for r in relations}), default=0)

    def __post_init__(self):
        for name in ("xy", "dz"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AboveRule.{name} must be > 0, got {getattr(self, name)}")


REFERENCE_RULE = AboveRule()  # the reference's count, neither block held (the earlier reference-rules rows)
REFERENCE_REWARD_RULE = AboveRule(lower_may_be_held=True)  # exactly the reference's reward, its typo included
StackRule = StackTolerance | AboveRule


# ---- reading the state -----------------------------------------------------------------------
def block_slice(index: int) -> slice:
    """Where block `index` (in BLOCK_NAMES order) lives in the 39-D state."""
    start = JOINT_COUNT + index * BLOCK_STATE_DIM
    return slice(start, start + BLOCK_STATE_DIM)


ATTACHED_COLUMNS = [block_slice(i).stop - 1 for i in range(len(BLOCK_NAMES))]  # each block's attached flag


def attached_flags(states) -> np.ndarray:
    """(..., 4) the blocks' attached flags (BLOCK_NAMES order) of (..., 39) states or plans."""
    states = np.asarray(states)
    return states[..., ATTACHED_COLUMNS]


def held_blocks(states, threshold: float = 0.5) -> np.ndarray:
    """(...,) for (..., 39) states or plans, the index (BLOCK_NAMES order) of the block each holds —
    the highest attached flag, if above `threshold` — or -1 for none."""
    flags = attached_flags(states)
    best = flags.argmax(-1)
    return np.where(np.take_along_axis(flags, best[..., None], -1)[..., 0] > threshold, best, -1)


def poses_from_state(state: Sequence[float]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], set[str]]:
    """Split a 39-D state into block name -> (position, quaternion xyzw) and the set of attached blocks."""
    state = np.asarray(state, dtype=float)
    if state.shape != (STATE_DIM,):
        raise ValueError(f"a Kuka state has shape ({STATE_DIM},), got {state.shape}")
    poses, attached = {}, set()
    for index, name in enumerate(BLOCK_NAMES):
        block = state[block_slice(index)]
        poses[name] = (block[:3], block[3:7])
        if block[7] > 0.5:
            attached.add(name)
    return poses, attached


def state_from_parts(joints: Sequence[float], poses: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                     attached: str | None = None, block_names: Sequence[str] = BLOCK_NAMES) -> np.ndarray:
    """The 39-D state from joint angles, block name -> (position, quaternion xyzw) and the held
    block; ValueError if a block is missing or a value is not finite."""
    missing = [name for name in block_names if name not in poses]
    if missing:
        raise ValueError(f"no pose for blocks {missing}")
    parts = [np.asarray(joints, dtype=np.float64).reshape(JOINT_COUNT)]
    for name in block_names:
        position, quat = poses[name]
        parts += [np.asarray(position, dtype=np.float64).reshape(3), np.asarray(quat, dtype=np.float64).reshape(4),
                  [float(name == attached)]]
    state = np.concatenate(parts)
    if not np.all(np.isfinite(state)):
        raise ValueError("the arm state has non-finite values")
    return state


def _scene(source) -> tuple[Mapping[str, tuple[np.ndarray, np.ndarray]], set[str]]:
    """Block poses and attached blocks from a world (has block_poses()), a pose mapping or a 39-D state."""
    if hasattr(source, "block_poses"):
        held = source.attached_block
        return source.block_poses(), ({held} if held else set())
    if isinstance(source, Mapping):
        return source, set()
    if isinstance(source, (np.ndarray, list, tuple)):
        return poses_from_state(source)
    raise ValueError("expected a KukaBlockWorld, a mapping name -> (position, quaternion) or a 39-D state, "
                     f"got {type(source).__name__}")


# ---- the geometric check ---------------------------------------------------------------------
def is_flat(quat: Sequence[float], max_tilt_deg: float = DEFAULT_TOLERANCE.max_tilt_deg) -> bool:
    """True if some face of the cube with orientation quat (xyzw) is within max_tilt_deg of horizontal."""
    x, y, z, w = quat
    vertical_components = quat2mat((w, x, y, z))[2]  # world-z component of each body axis
    return bool(np.max(np.abs(vertical_components)) >= np.cos(np.radians(max_tilt_deg)))


def on_top(world_or_poses, top: str, bottom: str, tolerance: StackTolerance = DEFAULT_TOLERANCE) -> bool:
    """True if block `top` rests on `bottom`: both flat and not held, centres aligned in xy, one block higher."""
    poses, attached = _scene(world_or_poses)
    for name in (top, bottom):
        if name not in poses:
            raise ValueError(f"unknown block {name!r}; blocks are {sorted(poses)}")
    return _rests_on(poses, attached, top, bottom, tolerance)


def _rests_on(poses, attached: set[str], top: str, bottom: str, tolerance: StackTolerance) -> bool:
    lower_held = bottom in attached and not getattr(tolerance, "lower_may_be_held", False)
    if top == bottom or top in attached or lower_held:
        return False
    (top_pos, top_quat), (bottom_pos, bottom_quat) = poses[top], poses[bottom]
    offset = np.asarray(top_pos, dtype=float) - np.asarray(bottom_pos, dtype=float)
    return tolerance.rests(offset, top_quat, bottom_quat)


def stacked_relations(world_or_poses, tolerance: StackRule = DEFAULT_TOLERANCE) -> set[Relation]:
    """Every on-top relation that holds now (under `tolerance`: this project's rule or the reference's)."""
    poses, attached = _scene(world_or_poses)
    return {Relation(top, bottom) for top in poses for bottom in poses
            if _rests_on(poses, attached, top, bottom, tolerance)}


def tower_placements(relations: set[Relation]) -> int:
    """Placements in the tallest tower the relations form (a 4-block tower has 3)."""
    below = {}
    for relation in relations:
        below.setdefault(relation.top, []).append(relation.bottom)

    def height(block: str, visiting: frozenset) -> int:
        if block in visiting:  # a cycle cannot be a tower
            return 0
        return max((1 + height(under, visiting | {block}) for under in below.get(block, [])), default=0)

    return max((height(block, frozenset()) for block in below), default=0)


# ---- goals -----------------------------------------------------------------------------------
def _as_relation(item) -> Relation:
    if isinstance(item, Relation):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return Relation(*item)
    raise ValueError(f"a relation is Relation(top, bottom) or a (top, bottom) pair, got {item!r}")


def validate_relations(relations, block_names: Sequence[str] = BLOCK_NAMES) -> list[str]:
    """Reasons the relations cannot all hold at once (empty if they can)."""
    errors, valid = [], []
    for item in relations:
        try:
            relation = _as_relation(item)
        except ValueError as error:
            errors.append(str(error))
            continue
        unknown = [name for name in (relation.top, relation.bottom) if name not in block_names]
        if unknown:
            errors.append(f"{relation}: unknown block {', '.join(map(repr, unknown))}; blocks are {list(block_names)}")
        elif relation.top == relation.bottom:
            errors.append(f"{relation}: a block cannot be on itself")
        elif relation in valid:
            errors.append(f"{relation}: given twice")
        else:
            valid.append(relation)
    errors += _support_errors(valid) + _cycle_errors(valid)
    return errors


def _support_errors(relations: list[Relation]) -> list[str]:
    errors = []
    for role, other in (("bottom", "top"), ("top", "bottom")):
        groups = {}
        for relation in relations:
            groups.setdefault(getattr(relation, role), []).append(getattr(relation, other))
        for block, others in groups.items():
            if len(others) > 1:
                where = "has two blocks on it" if role == "bottom" else "cannot be on two blocks"
                errors.append(f"{block} {where} ({', '.join(others)}): one block per block")
    return errors


def _cycle_errors(relations: list[Relation]) -> list[str]:
    below = {}
    for relation in relations:
        below.setdefault(relation.top, set()).add(relation.bottom)
    cycles = set()

    def visit(block: str, path: tuple[str, ...]) -> None:
        if block in path:
            cycle = path[path.index(block):]
            turn = cycle.index(min(cycle))
            cycles.add(cycle[turn:] + cycle[:turn])
            return
        for under in below.get(block, ()):
            visit(under, path + (block,))

    for block in below:
        visit(block, ())
    return [f"cycle: {' on '.join(cycle + cycle[:1])}" for cycle in sorted(cycles)]


def relations_from_order(order: Sequence[str]) -> list[Relation]:
    """Tower relations for blocks listed bottom to top."""
    return [Relation(top, bottom) for bottom, top in zip(order[:-1], order[1:])]


def placement_order(relations, block_names: Sequence[str] = BLOCK_NAMES) -> list[Relation]:
    """The relations sorted so each bottom block is already in place when its top is placed."""
    relations = check_relations(relations, block_names)
    tops = {relation.top for relation in relations}
    by_bottom = {relation.bottom: relation for relation in relations}
    ordered = []
    for base in sorted({relation.bottom for relation in relations} - tops, key=list(block_names).index):
        block = base
        while block in by_bottom:
            ordered.append(by_bottom[block])
            block = by_bottom[block].top
    return ordered


def check_relations(relations, block_names: Sequence[str] = BLOCK_NAMES) -> list[Relation]:
    """The relations as Relation objects; ValueError listing every problem if they cannot all hold."""
    errors = validate_relations(relations, block_names)
    if errors:
        raise ValueError("impossible relations: " + "; ".join(errors))
    return [_as_relation(item) for item in relations]


def check_task(task: str, relations=(), block_names: Sequence[str] = BLOCK_NAMES) -> list[Relation]:
    """Validated relations for a task; ValueError on an unknown task or a goal it cannot have."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    relations = check_relations(relations, block_names)
    if task == "rearrange" and not relations:
        raise ValueError("task 'rearrange' needs at least one relation")
    if task == "stack" and relations:
        if len(relations) != len(block_names) - 1 or len(placement_order(relations, block_names)) != len(relations) \
                or len({r.bottom for r in relations} - {r.top for r in relations}) != 1:
            raise ValueError("task 'stack' takes no relations (any tower) or one tower of all blocks; "
                             "use task 'rearrange' for other relation sets")
    return relations


def released(state: np.ndarray) -> np.ndarray:
    """The state with every attached flag cleared: what the reference's check after each plan sees
    (it sets the attachments to 0 and computes the reward again, without moving anything)."""
    state = np.array(state, dtype=np.float64, copy=True)
    state[ATTACHED_COLUMNS] = 0.0
    return state


# ---- score -----------------------------------------------------------------------------------
def score(poses, task: str, relations=(), tolerance: StackRule = DEFAULT_TOLERANCE,
          block_names: Sequence[str] = BLOCK_NAMES) -> tuple[int, int, float]:
    """(satisfied, total, score 0–100) of the current scene for a task.

    Unconditional stack: placements in the tallest tower out of len(blocks) − 1 = 3. Conditional
    stack and rearrange: goal relations that hold now out of all goal relations. `poses` is a
    world, a mapping name -> (position, quaternion) or a 39-D state.
    """
    relations = check_task(task, relations, block_names)
    holding = stacked_relations(poses, tolerance)
    if task == "stack" and not relations:
        satisfied, total = tolerance.tower(holding), len(block_names) - 1
    else:
        satisfied, total = sum(relation in holding for relation in relations), len(relations)
    return satisfied, total, 100.0 * satisfied / total


def score_trajectory(states, task: str, relations=(), tolerance: StackRule = DEFAULT_TOLERANCE,
                     block_names: Sequence[str] = BLOCK_NAMES) -> tuple[int, int, float]:
    """(satisfied, total, score 0–100) of an executed trajectory, counted as the reference code does.

    A relation counts once seen (it need not last). Unconditional: the tallest tower in the union
    of relations seen. Conditional / rearrange: goal relations are credited in the listed order,
    each only after the previous one (the reference's progress pointer).
    """
    relations = check_task(task, relations, block_names)
    seen, progress = set(), 0
    for state in states:
        holding = stacked_relations(state, tolerance)
        seen |= holding
        while progress < len(relations) and relations[progress] in holding:
            progress += 1
    if task == "stack" and not relations:
        satisfied, total = tolerance.tower(seen), len(block_names) - 1
    else:
        satisfied, total = progress, len(relations)
    return satisfied, total, 100.0 * satisfied / total


# ---- sampling evaluation goals ---------------------------------------------------------------
def sample_stack_order(rng: np.random.Generator, block_names: Sequence[str] = BLOCK_NAMES) -> list[str]:
    """A random tower order, bottom to top (conditional stacking)."""
    return [block_names[index] for index in rng.permutation(len(block_names))]


def sample_relations(rng: np.random.Generator, block_names: Sequence[str] = BLOCK_NAMES,
                     num_relations: Sequence[int] = (2, 3)) -> list[Relation]:
    """A random valid relation set for rearrangement: blocks in random order cut into chains.

    The number of relations is drawn from `num_relations` (default 2 or 3, as in the reference).
    """
    count = int(rng.choice(num_relations))
    if not 1 <= count <= len(block_names) - 1:
        raise ValueError(f"num_relations must lie in 1..{len(block_names) - 1}, got {count}")
    order = sample_stack_order(rng, block_names)
    cuts = set(rng.choice(np.arange(1, len(order)), size=len(order) - 1 - count, replace=False).tolist())
    return [Relation(order[i], order[i - 1]) for i in range(1, len(order)) if i not in cuts]


def reference_rearrangement(rng: np.random.Generator, block_names: Sequence[str] = BLOCK_NAMES) -> list[Relation]:
    """Rearrangement relations drawn as the reference's StackEnv.reset draws them: pick a bottom block
    and a top block until every block was a top, keeping each distinct pair, each bottom used once.
    Half of its goals are two separate two-block stacks, half a four-block tower."""
    tops, bottoms, relations = list(range(len(block_names))), list(range(len(block_names))), []
    while tops:
        bottom = bottoms[int(rng.integers(len(bottoms)))]
        top = tops.pop(int(rng.integers(len(tops))))
        bottoms.remove(bottom)
        if bottom in tops:
            tops.remove(bottom)
        if bottom == top:
            tops.append(top)
            bottoms.append(bottom)
        else:
            relations.append(Relation(block_names[top], block_names[bottom]))
    return relations


def sample_goal(rng: np.random.Generator, mode: str, block_names: Sequence[str] = BLOCK_NAMES,
                reference: bool = False) -> tuple[str, list[Relation]]:
    """(task, relations) for one evaluation episode of a paper mode: unconditional, conditional or
    rearrange; `reference`: rearrangement goals drawn as the reference code draws them."""
    if mode == "unconditional":
        return "stack", []
    if mode == "conditional":
        return "stack", relations_from_order(sample_stack_order(rng, block_names))
    if mode == "rearrange":
        draw = reference_rearrangement if reference else sample_relations
        return "rearrange", draw(rng, block_names)
    raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {EVAL_MODES}")
