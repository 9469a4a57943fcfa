"""Scripted pick-and-place demonstrations for the Kuka block world, saved in D4RL hdf5 layout.

Stands in for the paper's 10 000 PDDLStream demonstrations (which the reference code downloads):
an IK pick-and-place script builds a tower in a random order, or satisfies random rearrangement
relations, from a random start. One placement ("stage") takes exactly `stage_steps` = 128 control
steps, so a 4-block tower is 3 stages = 384 steps: one Diffuser plan of horizon 128 per stage, as
in the paper's 3 plans of 128 steps. Only successful episodes are kept.

Per step the file stores the 39-D state (observation) and the commanded action: the joint
position targets (7) and the grip command (1). Diffuser models states only for Kuka; the action
column is there for baselines and for tracking. CLI:

    python -m diffuser_core.tasks.kuka.demos --episodes N --out file.hdf5 --seed S
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pool

import h5py
import numpy as np
from tqdm import tqdm

from diffuser_core.tasks.kuka.world import KukaBlockWorld, KukaWorldConfig
from diffuser_core.tasks.kuka.tasks import (BLOCK_NAMES, STATE_DIM, TASKS, Relation, StackTolerance, check_task,
                                           on_top, placement_order, relations_from_order, sample_relations,
                                           sample_stack_order, stacked_relations)

WORLDS = {"project": KukaWorldConfig, "reference": KukaWorldConfig.reference}

ACTION_DIM = 8  # joint position targets (7) + grip command (1)


@dataclass(frozen=True)
class DemoConfig:
    """Timing (control steps) and geometry (metres) of one scripted pick-and-place stage."""

    stage_steps: int = 128
    approach_steps: int = 28  # move at transit height to above the block
    descend_steps: int = 16  # lower the tool onto the block's top face
    grip_steps: int = 3  # grip on, hold still while the grasp closes
    lift_steps: int = 16  # raise the block to transit height
    carry_steps: int = 28  # move at transit height to above the target
    lower_steps: int = 16  # lower the block onto the target
    release_steps: int = 3  # grip off, hold still while the block settles
    retreat_steps: int = 12  # raise the tool back to transit height; then hold to the stage end
    transit_height: float = 0.30  # tool height for moves: a held block clears a 4-block tower
    place_clearance: float = 0.003  # release the block this far above its resting height
    max_tool_error: float = 0.01  # IK must reach every waypoint within this, or the episode is dropped

    def __post_init__(self):
        steps = self.motion_steps()
        for name, value in steps.items():
            if value < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1, got {value}")
        if sum(steps.values()) > self.stage_steps:
            raise ValueError(f"stage phases take {sum(steps.values())} steps, more than stage_steps={self.stage_steps}")
        for name in ("transit_height", "place_clearance", "max_tool_error"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DemoConfig.{name} must be > 0, got {getattr(self, name)}")

    def motion_steps(self) -> dict[str, int]:
        """Step count of each phase of a stage, in order."""
        names = ("approach", "descend", "grip", "lift", "carry", "lower", "release", "retreat")
        return {f"{name}_steps": getattr(self, f"{name}_steps") for name in names}


@dataclass
class Episode:
    """One successful demonstration: T recorded steps plus the final state."""

    task: str
    relations: list[Relation]
    observations: np.ndarray  # (T, 39) state before each action
    actions: np.ndarray  # (T, 8) joint targets + grip command
    final_state: np.ndarray  # (39,) state after the last action
    stages: np.ndarray  # (T,) index of the placement (stage) each step belongs to

    def rewards(self) -> np.ndarray:
        """Per step: change in the number of goal relations that hold (sums to the placements made)."""
        states = np.vstack([self.observations, self.final_state[None]])
        counts = np.array([len(stacked_relations(state) & set(self.relations)) for state in states])
        return np.diff(counts).astype(np.float32)


# ---- the script ------------------------------------------------------------------------------
def _min_jerk(steps: int) -> np.ndarray:
    """Progress 0 → 1 over `steps` steps with zero velocity and acceleration at both ends."""
    tau = np.arange(1, steps + 1) / steps
    return 10 * tau ** 3 - 15 * tau ** 4 + 6 * tau ** 5


Phase = tuple[int, Callable[[], np.ndarray] | None, bool]  # (steps, live end point or None to hold, grip)


def _stage_plan(world: KukaBlockWorld, block: str, target: str, config: DemoConfig) -> list[Phase]:
    """The phases of one pick-and-place of `block` onto `target`."""

    def above(name: str) -> Callable[[], np.ndarray]:
        return lambda: np.append(world.block_poses()[name][0][:2], config.transit_height)

    height = world.config.block_size[2]

    def top_of_block() -> np.ndarray:
        return world.block_poses()[block][0] + (0.0, 0.0, height / 2)

    def place_point() -> np.ndarray:
        held_position = world.block_poses()[block][0]
        goal = world.block_poses()[target][0] + (0.0, 0.0, height + config.place_clearance)
        return world.tool_pose()[0] + goal - held_position  # keeps the grasp offset of the held block

    return [
        (config.approach_steps, above(block), False),
        (config.descend_steps, top_of_block, False),
        (config.grip_steps, None, True),
        (config.lift_steps, above(block), True),
        (config.carry_steps, above(target), True),
        (config.lower_steps, place_point, True),
        (config.release_steps, None, False),
        (config.retreat_steps, above(block), False),
    ]


def _cylindrical(point: np.ndarray) -> np.ndarray:
    return np.array([np.hypot(point[0], point[1]), np.arctan2(point[1], point[0]), point[2]])


def _cartesian(radius: float, azimuth: float, height: float) -> np.ndarray:
    return np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), height])


def _stage_waypoints(world: KukaBlockWorld, block: str, target: str,
                     config: DemoConfig) -> Iterator[tuple[np.ndarray, bool]]:
    """Tool waypoints and grip, one per control step, for one stage; end points are read live.

    Moves interpolate radius, azimuth and height about the arm base, so horizontal moves follow
    arcs around the robot instead of cutting close to its base.
    """
    position = world.tool_pose()[0]
    used = 0
    for steps, end_point, grip in _stage_plan(world, block, target, config):
        start = _cylindrical(position)
        end = start if end_point is None else _cylindrical(end_point())
        end[1] = start[1] + np.angle(np.exp(1j * (end[1] - start[1])))  # turn the short way round
        for progress in _min_jerk(steps):
            position = _cartesian(*(start + progress * (end - start)))
            yield position, grip
        used += steps
    for _ in range(config.stage_steps - used):
        yield position, False


class _Recorder:
    """Drives the world with IK waypoints and records (state, action) pairs."""

    def __init__(self, world: KukaBlockWorld, config: DemoConfig):
        self.world, self.config = world, config
        self.observations, self.actions, self.stages = [], [], []
        self.joints = world.joint_positions()

    def run_stage(self, block: str, target: str, stage: int) -> bool:
        """One pick-and-place; False if IK misses a waypoint or the block does not end on the target."""
        for tool_target, grip in _stage_waypoints(self.world, block, target, self.config):
            joints = self.world.ik(tool_target, seed=self.joints)
            if np.linalg.norm(self.world.tool_pose(joints)[0] - tool_target) > self.config.max_tool_error:
                return False
            self.joints = joints
            self.observations.append(self.world.state())
            self.actions.append(np.append(joints, float(grip)))
            self.stages.append(stage)
            self.world.set_joint_targets(joints, grip)
            self.world.step()
        return on_top(self.world, block, target, placement_tolerance(self.world))


def placement_tolerance(world: KukaBlockWorld) -> StackTolerance:
    """A tidy placement for the world's blocks: centred within half a cube width, one block higher."""
    height = world.config.block_size[2]
    return StackTolerance(block_size=height, z=0.25 * height)


def demonstrate(world: KukaBlockWorld, task: str, relations, seed: int | None = None,
                config: DemoConfig | None = None) -> Episode | None:
    """Reset the world (random start) and script the relations bottom-up; None if any stage fails."""
    config = config or DemoConfig()
    relations = placement_order(check_task(task, relations, world.block_names), world.block_names)
    world.reset(seed=seed)
    recorder = _Recorder(world, config)
    for stage, relation in enumerate(relations):
        if not recorder.run_stage(relation.top, relation.bottom, stage):
            return None
    final_state = world.state()
    if not set(relations) <= stacked_relations(world, placement_tolerance(world)):
        return None
    return Episode(task, list(relations), np.array(recorder.observations), np.array(recorder.actions),
                   final_state, np.array(recorder.stages))


def sample_demo_goal(rng: np.random.Generator, rearrange_fraction: float) -> tuple[str, list[Relation]]:
    """A tower in random order (task 'stack'), or with probability rearrange_fraction a rearrangement goal."""
    if rng.random() < rearrange_fraction:
        return "rearrange", sample_relations(rng, BLOCK_NAMES, num_relations=(1, 2, 3))
    return "stack", relations_from_order(sample_stack_order(rng, BLOCK_NAMES))


def _attempt(world: KukaBlockWorld, seed: int, index: int, rearrange_fraction: float,
             config: DemoConfig | None) -> Episode | None:
    """Attempt number `index`: its goal and start depend only on (seed, index), not on the process."""
    rng = np.random.default_rng([seed, index])
    task, relations = sample_demo_goal(rng, rearrange_fraction)
    return demonstrate(world, task, relations, seed=int(rng.integers(2 ** 31)), config=config)


_process_world: KukaBlockWorld | None = None


def _attempt_in_worker(seed: int, index: int, rearrange_fraction: float, config: DemoConfig | None,
                       world: str = "project") -> Episode | None:
    """`_attempt` on this worker process's own world, made on first use."""
    global _process_world
    if _process_world is None:
        _process_world = KukaBlockWorld(config=WORLDS[world]())
    return _attempt(_process_world, seed, index, rearrange_fraction, config)


def generate(episodes: int, seed: int, rearrange_fraction: float = 0.0, config: DemoConfig | None = None,
             workers: int = 1, max_attempts_per_episode: int = 5, progress: bool = True,
             world: str = "project") -> tuple[list[Episode], int]:
    """The first `episodes` successful attempts (in attempt order, so any worker count gives the same file)
    and the number of attempts that took; `world` is this project's or the reference code's."""
    if episodes < 1 or workers < 1:
        raise ValueError(f"episodes and workers must be >= 1, got {episodes} and {workers}")
    if not 0 <= rearrange_fraction <= 1:
        raise ValueError(f"rearrange_fraction must be in [0, 1], got {rearrange_fraction}")
    indices = range(episodes * max_attempts_per_episode)
    kept, attempts = [], 0
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(Pool(workers))
            results = pool.imap(partial(_attempt_in_worker, seed, rearrange_fraction=rearrange_fraction,
                                        config=config, world=world), indices)
        else:
            simulator = stack.enter_context(KukaBlockWorld(config=WORLDS[world]()))
            results = (_attempt(simulator, seed, index, rearrange_fraction, config) for index in indices)
        bar = stack.enter_context(tqdm(total=episodes, disable=not progress, desc="kuka demos"))
        for episode in results:
            attempts += 1
            if episode is not None:
                kept.append(episode)
                bar.update()
            if len(kept) == episodes:
                return kept, attempts
    raise RuntimeError(f"only {len(kept)} of {attempts} demonstrations succeeded; check the world setup")


# ---- storage ---------------------------------------------------------------------------------
def write_demos(path: str, episodes: list[Episode], attrs: dict | None = None) -> None:
    """Write episodes back to back in D4RL layout; `timeouts` marks each episode's last step.

    infos/task: 0 = stack, 1 = rearrange; infos/relations: (T, 3, 2) block indices (top, bottom)
    of the goal, −1 padded; infos/stage: placement index of each step.
    """
    if not episodes:
        raise ValueError("no episodes to write")
    names = list(BLOCK_NAMES)
    columns = {key: [] for key in ("observations", "actions", "rewards", "terminals", "timeouts",
                                   "infos/task", "infos/relations", "infos/stage")}
    for episode in episodes:
        length = len(episode.observations)
        goal = np.full((len(names) - 1, 2), -1, dtype=np.int8)
        for row, relation in enumerate(episode.relations):
            goal[row] = names.index(relation.top), names.index(relation.bottom)
        timeouts = np.zeros(length, dtype=bool)
        timeouts[-1] = True
        columns["observations"].append(episode.observations.astype(np.float32))
        columns["actions"].append(episode.actions.astype(np.float32))
        columns["rewards"].append(episode.rewards())
        columns["terminals"].append(np.zeros(length, dtype=bool))
        columns["timeouts"].append(timeouts)
        columns["infos/task"].append(np.full(length, TASKS.index(episode.task), dtype=np.int8))
        columns["infos/relations"].append(np.repeat(goal[None], length, axis=0))
        columns["infos/stage"].append(episode.stages.astype(np.int8))
    with h5py.File(path, "w") as file:
        for key, parts in columns.items():
            file.create_dataset(key, data=np.concatenate(parts), compression="gzip")
        file.attrs["block_names"] = names
        file.attrs["state_dim"] = STATE_DIM
        file.attrs["action_dim"] = ACTION_DIM
        for key, value in (attrs or {}).items():
            file.attrs[key] = value


def main(argv=None) -> None:
    """CLI: generate scripted demonstrations and write them to an hdf5 file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, required=True, help="successful episodes to keep")
    parser.add_argument("--out", required=True, help="output .hdf5 path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="parallel simulator processes")
    parser.add_argument("--rearrange-fraction", type=float, default=0.0,
                        help="share of rearrangement demos (default 0: towers only, like the reference data)")
    parser.add_argument("--world", default="project", choices=sorted(WORLDS),
                        help="this project's world, or the reference code's (its slabs, start ring, tool contact)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    episodes, attempts = generate(args.episodes, args.seed, args.rearrange_fraction, workers=args.workers,
                                  world=args.world)
    minutes = (time.perf_counter() - start) / 60
    config = DemoConfig()
    write_demos(args.out, episodes, attrs={"seed": args.seed, "attempts": attempts,
                                           "stage_steps": config.stage_steps,
                                           "rearrange_fraction": args.rearrange_fraction, "world": args.world})
    steps = sum(len(episode.observations) for episode in episodes)
    print(f"wrote {len(episodes)} episodes ({steps} steps, {attempts} attempts) to {args.out} "
          f"in {minutes * 60:.1f} s: {len(episodes) / minutes:.1f} episodes/min")


if __name__ == "__main__":
    main()
