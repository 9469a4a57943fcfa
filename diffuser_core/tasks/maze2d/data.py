"""Maze2D offline data the D4RL way: a grid-planning PD expert drives the mass to random goals.

One continuous stream (never reset): the expert plans a path of cells by Q-iteration on the
grid, tracks jittered waypoints with a PD law, and on arrival a new random goal is drawn.
Written in D4RL's hdf5 layout; `timeouts` marks goal arrivals, `rewards` are the sparse reward
of the maze's fixed goal, as in the hosted maze2d-*-v1 files.

CLI:  python -m diffuser_core.tasks.maze2d.data --maze umaze --steps N --out file.hdf5 --seed S
"""
import argparse
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from tqdm import tqdm

from diffuser_core.data.d4rl_hdf5 import write_d4rl_hdf5
from diffuser_core.tasks.maze2d import layouts as L
from diffuser_core.tasks.maze2d.env import Maze2DEnv


# ------------------------------------------------------------------------ grid planning
def grid_successors(walls: np.ndarray) -> np.ndarray:
    """Next flat cell index for every (cell, move) in GRID_MOVES; blocked moves stay put."""
    rows, cols = walls.shape
    successors = np.empty((rows * cols, len(L.GRID_MOVES)), dtype=np.int64)
    for i in range(rows):
        for j in range(cols):
            for move, (di, dj) in enumerate(L.GRID_MOVES):
                ni, nj = i + di, j + dj
                inside = 0 <= ni < rows and 0 <= nj < cols
                successors[i * cols + j, move] = (
                    ni * cols + nj if inside and not walls[ni, nj] else i * cols + j)
    return successors


def greedy_next_cells(walls: np.ndarray, iterations: int = L.Q_ITERATIONS,
                      discount: float = L.Q_DISCOUNT) -> np.ndarray:
    """For every goal cell g and cell s, the cell the greedy Q-iteration policy moves to.

    Reward 1 for being in g, deterministic moves, hard max, `iterations` sweeps from Q = 0;
    ties go to the first move of GRID_MOVES. Returns (cells, cells) flat indices [g, s].
    """
    successors = grid_successors(walls)
    cells = successors.shape[0]
    rewards = np.eye(cells)  # rewards[g, s] = 1 when s is the goal g
    q_values = np.zeros((cells, cells, successors.shape[1]))
    for _ in range(iterations):
        values = q_values.max(axis=2)
        q_values = rewards[:, :, None] + discount * values[:, successors]
    best_moves = q_values.argmax(axis=2)
    return np.take_along_axis(successors[None], best_moves[:, :, None], axis=2)[:, :, 0]


# ------------------------------------------------------------------------------ expert
class WaypointExpert:
    """D4RL's WaypointController: PD tracking of jittered grid waypoints towards a target cell.

    action = clip(10 * (waypoint - xy) - 1 * v, -1, 1). A waypoint counts as reached within 0.1
    when the mass moved less than 0.1 in the last step; the goal is solved likewise.
    """

    def __init__(self, walls: np.ndarray, rng: np.random.Generator):
        self._cols = walls.shape[1]
        self._next_cell = greedy_next_cells(walls)
        self._rng = rng
        self._target_cell = None
        self._waypoints = []
        self._index = 0
        self._previous = (0.0, 0.0)

    def action(self, x: float, y: float, vx: float, vy: float, target) -> tuple:
        """Force (ax, ay) towards `target` from state (x, y, vx, vy), and whether it is solved."""
        target_cell = (round(target[0]), round(target[1]))  # D4RL's gridify_state
        if target_cell != self._target_cell:
            self._plan(x, y, target_cell)
        tx, ty = self._target_cell
        moved = math.hypot(self._previous[0] - x, self._previous[1] - y)
        solved = math.hypot(x - tx, y - ty) < L.EXPERT_SOLVE_THRESHOLD and (
            moved < L.EXPERT_MOVE_THRESHOLD)
        wx, wy = (tx, ty) if solved else self._waypoints[self._index]
        ax = L.EXPERT_P_GAIN * (wx - x) + L.EXPERT_D_GAIN * vx
        ay = L.EXPERT_P_GAIN * (wy - y) + L.EXPERT_D_GAIN * vy
        reached = math.hypot(x - wx, y - wy) < L.EXPERT_SOLVE_THRESHOLD
        if not solved and reached and moved < L.EXPERT_MOVE_THRESHOLD:
            self._index += 1
        self._previous = (x, y)
        return _clip_unit(ax), _clip_unit(ay), solved

    def _plan(self, x: float, y: float, target_cell: tuple) -> None:
        """Roll the greedy grid policy from the current cell to the target into waypoints."""
        start = (round(x), round(y))
        goal = target_cell[0] * self._cols + target_cell[1]
        cell = start[0] * self._cols + start[1]
        waypoints = []
        for _ in range(L.MAX_WAYPOINTS):
            cell = int(self._next_cell[goal, cell])
            point = (float(cell // self._cols), float(cell % self._cols))
            if cell != goal:
                jitter = self._rng.uniform(size=2) * L.WAYPOINT_JITTER
                point = (point[0] - jitter[0], point[1] - jitter[1])
            waypoints.append(point)
            if cell == goal:
                break
        self._waypoints, self._index = waypoints, 0
        self._target_cell = target_cell
        self._previous = (float(start[0]), float(start[1]))  # D4RL resets it to the start cell


def _clip_unit(value: float) -> float:
    return -1.0 if value < -1.0 else (1.0 if value > 1.0 else value)


# -------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class DataConfig:
    """What to generate: maze name, number of steps, seed, std of Gaussian action noise."""

    maze: str = "umaze"
    steps: Optional[int] = None  # None: D4RL's size for this maze (1M / 2M / 4M)
    seed: int = 0
    action_noise: float = 0.0  # D4RL's --noisy uses 0.5

    def __post_init__(self):
        L.maze_spec(self.maze)
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps <= 0):
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if not (math.isfinite(self.action_noise) and self.action_noise >= 0):
            raise ValueError(f"action_noise must be a finite std >= 0, got {self.action_noise!r}")

    @property
    def num_steps(self) -> int:
        """Requested steps, or D4RL's dataset size for the maze."""
        return self.steps if self.steps is not None else L.maze_spec(self.maze).dataset_size


def generate_maze2d_data(config: DataConfig, progress: bool = False) -> dict:
    """Run the expert for config.num_steps steps of one stream; returns D4RL-layout arrays."""
    env_seed, expert_seed = np.random.SeedSequence(config.seed).spawn(2)
    env = Maze2DEnv(config.maze, seed=env_seed)
    expert_rng = np.random.default_rng(expert_seed)
    expert = WaypointExpert(env.layout, expert_rng)
    steps = config.num_steps
    observations = np.empty((steps, 4))
    actions = np.empty((steps, 2))
    goals = np.empty((steps, 2))
    arrivals = np.zeros(steps, dtype=bool)

    env.reset()
    goal = env.random_goal()
    steps_on_goal = 0
    qpos, qvel = env.data.qpos, env.data.qvel
    for t in tqdm(range(steps), disable=not progress, mininterval=1.0, unit="step"):
        x, y = qpos.tolist()
        vx, vy = qvel.tolist()
        ax, ay, solved = expert.action(x, y, vx, vy, goal)
        if config.action_noise > 0:
            noise = expert_rng.normal(0.0, config.action_noise, size=2)
            ax, ay = _clip_unit(ax + noise[0]), _clip_unit(ay + noise[1])
        observations[t] = (x, y, vx, vy)
        actions[t] = (ax, ay)
        goals[t] = goal
        arrivals[t] = solved or steps_on_goal >= env.max_episode_steps
        env.simulate(ax, ay)
        steps_on_goal += 1
        if arrivals[t]:
            goal, steps_on_goal = env.random_goal(), 0
    return _d4rl_layout(observations, actions, goals, arrivals, env)


def _d4rl_layout(observations, actions, goals, arrivals, env: Maze2DEnv) -> dict:
    """Arrays with D4RL's keys and dtypes (float32, bool flags)."""
    distance = np.linalg.norm(observations[:, :2] - env.cell_to_xy(env.spec.goal_cell), axis=1)
    return {
        "observations": observations.astype(np.float32),
        "actions": actions.astype(np.float32),
        "rewards": (distance <= L.GOAL_RADIUS).astype(np.float32),
        "terminals": np.zeros(len(arrivals), dtype=bool),
        "timeouts": arrivals,
        "infos/goal": goals.astype(np.float32),
        "infos/qpos": observations[:, :2].astype(np.float32),
        "infos/qvel": observations[:, 2:].astype(np.float32),
    }


# --------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options of the generator."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maze", default="umaze", choices=sorted(L.MAZES))
    parser.add_argument("--steps", type=int, default=None,
                        help="number of steps (default: D4RL's 1M / 2M / 4M)")
    parser.add_argument("--out", required=True, help="output .hdf5 path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--action-noise", type=float, default=0.0,
                        help="std of Gaussian action noise (D4RL's --noisy: 0.5)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Generate a dataset and write it as D4RL hdf5."""
    args = parse_args(argv)
    try:
        config = DataConfig(args.maze, args.steps, args.seed, args.action_noise)
    except ValueError as error:
        raise SystemExit(f"maze2d_data: {error}")
    start = time.perf_counter()
    data = generate_maze2d_data(config, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    attrs = {"maze": config.maze, "seed": config.seed, "action_noise": config.action_noise,
             "generator": "diffuser_core.tasks.maze2d.data"}
    write_d4rl_hdf5(args.out, data, attrs=attrs)
    print(f"wrote {args.out}: {config.num_steps} steps of {config.maze}, "
          f"{int(data['timeouts'].sum())} goals reached, {config.num_steps / elapsed:.0f} steps/s")


if __name__ == "__main__":
    main()
