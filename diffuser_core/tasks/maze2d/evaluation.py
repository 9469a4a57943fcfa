"""Maze2D / Multi2D evaluation: the paper's normalized score, mean ± standard error over episodes.

Reference protocol (jannerm/diffuser branch maze2d, scripts/plan_maze2d.py): inpaint the start
(t = 0, the reset observation) and the goal (t = H-1, the env's target with zero velocity), plan
ONCE, then track the plan open loop with the waypoint rule for the whole episode (300/600/800
steps), holding the last waypoint after the plan ends. The return is the number of steps spent
within 0.5 of the goal. `replan_every = k` instead replans every k steps from the current state;
closed loop, `shrink_horizon` sizes each replan to the route that remains (diffuser_core.planning.horizon)
and `hold_at_goal` stops replanning once within the reward radius and holds the goal, as the
reference's tracker does after its one plan ends. `horizon_sizing` sizes the first plan (and every
replan that does not shrink) from the start and the goal: fixed (the model's horizon), straight
(by the straight-line distance) or learned (by a steps-to-go model trained on the offline data).
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from diffuser_core.checkpoint import load_steps_to_go, load_value_guide, read_checkpoint
from diffuser_core.config import resolve_device
from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planning.choice import CHOICE_MODELS, PlanChoice, load_rank
from diffuser_core.planning.hierarchy import SEGMENT_FILLERS
from diffuser_core.planning.horizon import HorizonSizing
from diffuser_core.planning.loading import load_planner
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.planning.receding import GoalRun, LoopSettings, SimulatedClock
from diffuser_core.sampling.samplers import check_sampler_name
from diffuser_core.scores import episode_seeds, standard_error

from . import PAPER_SCORES
from .env import Maze2DEnv
from .grid import MazeGrid
from .layouts import GOAL_RADIUS, MAZES, PARTICLE_RADIUS, TIMESTEP
from .point_mass import POSITION_DIMS, PointMass, point_mass_controller

CONTACT_SLACK = 0.01  # m: the mass's surface this close to a wall counts as touching it

@dataclass
class Maze2DEvalConfig:
    """What to evaluate and how. replan_every=None is the reference protocol (plan once, open
    loop); an int k replans every k env steps from the current state (closed loop), optionally
    warm-started. episode_steps=None runs the maze's full limit (needed for paper-comparable
    scores). denoising_steps=None uses all the model's diffusion steps."""

    maze: str = "umaze"
    episodes: int = 10
    seed: int = 0
    multi_goal: bool = False
    sampler: str = "ddpm"
    denoising_steps: int | None = None
    replan_every: int | None = None
    warm_start: bool = False
    warm_start_steps: int = PlannerConfig.warm_start_steps
    shrink_horizon: bool = False
    hold_at_goal: bool = False
    episode_steps: int | None = None
    device: str = "cpu"
    low_level: str | None = None  # hierarchical checkpoints: a low-level Diffuser fills the segments
    segments: str = "linear"  # ... else this interpolation does (linear | hermite)
    # the planner node's loop instead of replan_every: a planning tick every 1 / loop.replan_rate s of
    # simulated time, the goal reached within loop.goal_tolerance and then held, as the node does
    loop: LoopSettings | None = None
    horizon: int | None = None
    # obstacles placed at test time: cells blocked (walled when obstacles_physical, else keep-out
    # zones the robot could drive through, so entries can be counted); the planner sees them, with the
    # walls, as the costmap the simulator publishes, and avoids them as `avoidance` says
    obstacles: tuple = ()
    obstacles_physical: bool = False
    avoidance: AvoidanceSettings = field(default_factory=AvoidanceSettings)
    # learned value guidance (paper §3.2): every denoising step follows guide_scale * Sigma * grad J, J the
    # value checkpoint's predicted return; goal_inpainting=False plans from the start alone, so the value
    # (or nothing) draws plans to the goal
    value_checkpoint: str | None = None
    guide_scale: float = 0.1
    n_guide_steps: int = 1
    goal_inpainting: bool = True
    backend: str = "torch"  # how the denoiser runs (diffuser_core.model.backends): torch | onnx | auto
    # how long the first plan is (and replans that do not shrink): fixed = the model's horizon
    horizon_sizing: HorizonSizing = field(default_factory=HorizonSizing)
    # a choice among `candidates` plans sampled in one batch, by a model of the data alone (no map):
    # "density" (model.visit_density file) or "reachability" (model.reachability file); "": the first
    choose_by: str = ""
    choice_model: str = ""
    candidates: int = 1

    def __post_init__(self):
        if self.segments not in SEGMENT_FILLERS:
            raise ValueError(f"eval segments must be one of {SEGMENT_FILLERS}, got {self.segments!r}")
        if self.maze not in MAZES:
            raise ValueError(f"eval maze must be one of {sorted(MAZES)}, got {self.maze!r}")
        _require_int("episodes", self.episodes, minimum=1)
        _require_int("seed", self.seed, minimum=0)
        _require_int("warm_start_steps", self.warm_start_steps, minimum=1)
        for name in ("denoising_steps", "replan_every", "episode_steps"):
            if getattr(self, name) is not None:
                _require_int(name, getattr(self, name), minimum=1)
        for name in ("multi_goal", "warm_start", "shrink_horizon", "hold_at_goal", "goal_inpainting"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"eval {name} must be True or False, got {getattr(self, name)!r}")
        check_sampler_name(self.sampler)
        _require_int("candidates", self.candidates, minimum=1)
        if self.choose_by not in CHOICE_MODELS or bool(self.choose_by) != bool(self.choice_model):
            raise ValueError(f"eval choose_by must be one of {sorted(CHOICE_MODELS)} with a choice_model file "
                             f"(or both empty), got {self.choose_by!r} and {self.choice_model!r}")
        if not isinstance(self.horizon_sizing, HorizonSizing):
            raise ValueError(f"eval horizon_sizing must be a HorizonSizing, got {self.horizon_sizing!r}")
        self.obstacles = tuple(tuple(int(k) for k in cell) for cell in self.obstacles)
        if self.loop is not None and (self.replan_every is not None or self.shrink_horizon or self.hold_at_goal):
            raise ValueError("eval loop (the node's loop) excludes replan_every, shrink_horizon and hold_at_goal "
                             "(its LoopSettings say how it replans)")
        for name in ("warm_start", "shrink_horizon", "hold_at_goal"):
            if getattr(self, name) and self.replan_every is None and self.loop is None:
                raise ValueError(f"eval {name} needs replan_every (the reference protocol plans once)")
        resolve_device(self.device)  # raises ValueError for an unknown device name

    def planner_config(self, horizon: int | None = None) -> PlannerConfig:
        """The planner settings this evaluation implies (the seed is set per episode)."""
        return PlannerConfig(sampler=self.sampler, denoising_steps=self.denoising_steps,
                             horizon=horizon or self.horizon, warm_start=self.warm_start,
                             warm_start_steps=self.warm_start_steps, guide_scale=self.guide_scale,
                             n_guide_steps=self.n_guide_steps, backend=self.backend)

    def episode_loop(self) -> "EpisodeLoop":
        """How episodes replan, as the planner node's loop: the node's own settings (`loop`), or the
        fixed cadences of the reference protocol (one plan at the start) and replan_every (a plan
        every k steps, with hold_at_goal holding the goal once within the reward radius)."""
        if self.loop is not None:
            tick_every = max(1, round(self.loop.tick_period / self.loop.plan_dt))
            return EpisodeLoop(tick_every, replace(self.loop, inpaint_goal=self.goal_inpainting))
        steps = self.episode_steps or MAZES[self.maze].max_episode_steps
        every_tick = LoopSettings(replan_deviation=0.0, max_plan_age=2 * steps * TIMESTEP, plan_dt=TIMESTEP,
                                  shrink_horizon=self.shrink_horizon, goal_tolerance=GOAL_RADIUS,
                                  hold_at_goal=self.hold_at_goal, inpaint_goal=self.goal_inpainting)
        return EpisodeLoop(self.replan_every or steps, every_tick)  # plans never grow too old to track

    @property
    def protocol(self) -> str:
        """'reference (plan once, open loop)' or 'replan every k steps [warm start]'."""
        if self.loop is not None:
            r = self.loop
            keep = (f"replan when {r.replan_deviation} m off the plan or at half of max_plan_age {r.max_plan_age} s"
                    if r.replan_deviation > 0 else "replan at every tick")
            return (f"planner node loop: ticks at {r.replan_rate:g} Hz, {keep}, settle within "
                    f"{r.settle_distance} m{', shrinking horizon' if r.shrink_horizon else ''}"
                    f"{f', warm start k={self.warm_start_steps}' if self.warm_start else ''}, hold the goal "
                    f"once within {r.goal_tolerance} m{self.sizing_words}{self.choice_words}")
        if self.replan_every is None:
            return f"reference (plan once, open loop){self.sizing_words}{self.choice_words}"
        warm = f", warm start k={self.warm_start_steps}" if self.warm_start else ""
        shrink = ", shrinking horizon" if self.shrink_horizon else ""
        hold = ", hold at goal" if self.hold_at_goal else ""
        return f"replan every {self.replan_every} steps{warm}{shrink}{hold}{self.sizing_words}{self.choice_words}"

    @property
    def choice_words(self) -> str:
        """The choice among sampled plans, for the protocol line ('' without one)."""
        return f", best of {self.candidates} plans by the {self.choose_by} model" if self.choose_by else ""

    @property
    def sizing_words(self) -> str:
        """How plans are sized, for the protocol line ('' for the fixed horizon)."""
        sizing = self.horizon_sizing
        if sizing.rule == "straight":
            return f", horizon {sizing.per_unit:g} * distance + {sizing.offset:g} steps"
        if sizing.rule == "learned":
            return f", horizon {sizing.scale:g} * learned steps-to-go + {sizing.margin:g} steps"
        return ""


class EpisodeLoop(NamedTuple):
    """tick_every: env steps between planning ticks; settings: the receding loop's."""

    tick_every: int
    settings: LoopSettings


@dataclass
class Maze2DEpisodeResult:
    """One episode: the env return and its normalized score, whether and when the mass first
    came within 0.5 of the goal, the planner calls and their latency, the driven path
    (start + one row per step, xy) and the first plan (H, 4)."""

    seed: int
    start: np.ndarray
    goal: np.ndarray
    episode_return: float
    normalized_score: float
    reached: bool
    steps_to_goal: int | None
    plan_ms: list[float]
    driven_xy: np.ndarray
    first_plan: np.ndarray
    blocked_steps: int = 0  # steps the mass spent inside an obstacle cell (keep-out zones)
    wall_contact_steps: int = 0  # steps the mass touched a wall (pressing into it or sliding along it)
    wall_cell_steps: int = 0  # steps its centre was inside a wall cell (walls stop the mass: 0 unless it broke through)
    plans_xy: list = field(default_factory=list)  # every plan's positions (for pictures; not in to_dict)

    @property
    def plan_calls(self) -> int:
        """How many plans the episode made (1 under the reference protocol)."""
        return len(self.plan_ms)

    def to_dict(self) -> dict:
        """JSON-ready summary of the episode (without the paths)."""
        return {"seed": self.seed, "start": self.start.tolist(), "goal": self.goal.tolist(),
                "return": self.episode_return, "normalized_score": self.normalized_score,
                "reached": self.reached, "steps_to_goal": self.steps_to_goal,
                "plan_calls": self.plan_calls, "first_plan_steps": len(self.first_plan),
                "plan_ms": [round(ms, 3) for ms in self.plan_ms],
                "blocked_steps": self.blocked_steps, "wall_contact_steps": self.wall_contact_steps,
                "wall_cell_steps": self.wall_cell_steps}


@dataclass
class Maze2DEvalSummary:
    """All episodes of one evaluation and the numbers a paper table reports."""

    checkpoint: str
    checkpoint_step: int
    config: Maze2DEvalConfig
    episodes: list[Maze2DEpisodeResult]
    wall_time_s: float = 0.0
    scores: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if not self.episodes:
            raise ValueError("an evaluation summary needs at least one episode")
        self.scores = np.array([episode.normalized_score for episode in self.episodes])

    @property
    def mean_score(self) -> float:
        """Mean normalized score over episodes."""
        return float(self.scores.mean())

    @property
    def standard_error(self) -> float:
        """Standard error of the mean score (the paper's ±)."""
        return standard_error(self.scores)

    @property
    def success_rate(self) -> float:
        """Fraction of episodes that came within 0.5 of the goal at least once."""
        return float(np.mean([episode.reached for episode in self.episodes]))

    def plan_latency_ms(self, percentile: float) -> float:
        """A percentile of the per-plan wall time over every plan of every episode."""
        plan_ms = np.concatenate([e.plan_ms for e in self.episodes])
        return float(np.percentile(plan_ms, percentile)) if plan_ms.size else math.nan

    def to_dict(self) -> dict:
        """JSON-ready results: headline numbers, the config, the paper's number and each episode."""
        reached = [e.steps_to_goal for e in self.episodes if e.reached]
        paper = PAPER_SCORES[(self.config.maze, self.config.multi_goal)]
        return {
            "checkpoint": self.checkpoint, "checkpoint_step": self.checkpoint_step,
            "protocol": self.config.protocol, "config": asdict(self.config),
            "episodes": len(self.episodes), "mean_normalized_score": self.mean_score,
            "standard_error": self.standard_error, "success_rate": self.success_rate,
            "mean_steps_to_goal": float(np.mean(reached)) if reached else None,
            "plan_ms_median": self.plan_latency_ms(50), "plan_ms_p95": self.plan_latency_ms(95),
            "plan_calls": sum(e.plan_calls for e in self.episodes),
            "episodes_touching_walls": sum(e.wall_contact_steps > 0 for e in self.episodes),
            "episodes_entering_wall_cells": sum(e.wall_cell_steps > 0 for e in self.episodes),
            "wall_contact_steps": sum(e.wall_contact_steps for e in self.episodes),
            "wall_time_s": self.wall_time_s,
            "paper_score": {"mean": paper[0], "standard_error": paper[1]},
            "per_episode": [e.to_dict() for e in self.episodes],
        }


def evaluate_episode(env: Maze2DEnv, planner: Planner, config: Maze2DEvalConfig, seed: int,
                     start_cell=None, goal_cell=None) -> Maze2DEpisodeResult:
    """Run one episode: reset with `seed` (optionally from `start_cell`, to `goal_cell`), plan to env.target with
    zero velocity and track the plan, replanning as config.episode_loop() says. Same seed -> same
    result.

    Every protocol runs the planner node's receding loop (point_mass_controller), in simulated
    time: a planning tick every `tick_every` env steps, a control tick every env step (plans take
    no simulated time here: the node's latency is the difference). With obstacles the loop gets
    the costmap the simulator would publish (the walls and the obstacle cells)."""
    planner.reset()
    planner.generator.manual_seed(seed)
    observation = env.reset(seed=seed, start_cell=start_cell, goal_cell=goal_cell)
    start, goal = observation.copy(), np.array([*env.target, 0.0, 0.0])
    loop, clock = config.episode_loop(), SimulatedClock()
    controller = point_mass_controller(planner, loop.settings, clock, config.maze, avoidance=config.avoidance,
                                       guides=value_guides(planner, config), sizing=horizon_rule(planner, config),
                                       choice=plan_choice(config))
    controller.use_map(obstacle_costmap(config.maze, config.obstacles))  # the costmap maze2d_sim publishes
    run = GoalRun(goal, loop.settings.goal_tolerance)
    plan_ms, plans_xy, first_plan, driven, rewards = [], [], None, [observation[:2].copy()], []
    for step in range(config.episode_steps or env.max_episode_steps):
        clock.time = step * loop.settings.plan_dt
        if step % loop.tick_every == 0 and (result := controller.plan_tick(run, observation, clock.time)):
            plan_ms.append(result.plan_time_ms)
            plans_xy.append(np.asarray(result.observations[:, :2], dtype=np.float32))
            first_plan = result.observations if first_plan is None else first_plan
        decision = controller.control(run, observation, clock.time)
        if decision.outcome:
            run.finish(decision.outcome, decision.message)
        observation, reward, _, _ = env.step(decision.command)
        driven.append(observation[:2].copy())
        rewards.append(reward)
    result = _episode_result(env, seed, start, goal, rewards, plan_ms, driven, first_plan)
    result.wall_contact_steps = int(np.count_nonzero(wall_contact(env.grid, np.asarray(driven[1:]))))
    result.plans_xy = plans_xy
    cells = env.grid.cells_at(np.asarray(driven[1:]))
    result.wall_cell_steps = int(np.count_nonzero(env.grid.walls[cells[:, 0], cells[:, 1]]))
    if config.obstacles:
        cells = env.grid.cells_at(np.asarray(driven))
        result.blocked_steps = int(sum(tuple(cell) in set(config.obstacles) for cell in cells))
    return result


def wall_contact(grid: MazeGrid, xy: np.ndarray) -> np.ndarray:
    """(T,) whether the mass at each of the points xy (T, 2) touches a wall (its surface within
    CONTACT_SLACK of one): pressing into a wall, or sliding along it."""
    boxes = grid.wall_boxes()
    centers, halves = np.array([c for c, _ in boxes]), np.array([h for _, h in boxes])
    outside = np.maximum(np.abs(xy[:, None, :] - centers[None]) - halves[None], 0.0)
    return np.linalg.norm(outside, axis=-1).min(axis=1) < PARTICLE_RADIUS + CONTACT_SLACK



@functools.lru_cache(maxsize=16)
def obstacle_costmap(maze: str, obstacles: tuple):
    """The costmap maze2d_sim publishes with these obstacles: the walls and the obstacle cells, on
    its grid."""
    return MazeGrid.of_maze(maze).with_walls(obstacles).occupancy_map()


def value_guides(planner, config: Maze2DEvalConfig) -> list:
    """The config's learned value guide (none without a value checkpoint)."""
    if config.value_checkpoint is None:
        return []
    if not hasattr(planner, "diffusion"):
        raise ValueError("value guidance needs a flat checkpoint (a hierarchical planner has no one diffusion schedule)")
    return [_value_guide(config.value_checkpoint, planner.normalizer, planner.diffusion.n_timesteps)]


@functools.lru_cache(maxsize=4)
def _value_guide(path: str, normalizer, n_timesteps: int):
    return load_value_guide(path, normalizer, n_timesteps)


def plan_choice(config: Maze2DEvalConfig) -> PlanChoice | None:
    """The config's choice among sampled plans (None: the planner keeps its first)."""
    if not config.choose_by:
        return None
    return PlanChoice(config.candidates, _choice_rank(config.choose_by, config.choice_model))


@functools.lru_cache(maxsize=4)
def _choice_rank(kind: str, path: str):
    return load_rank(kind, path)


def horizon_rule(planner, config: Maze2DEvalConfig):
    """The config's plan sizing for this planner on the point mass's positions (None: fixed)."""
    sizing = config.horizon_sizing
    model = _steps_to_go(sizing.steps_to_go) if sizing.steps_to_go else None
    return sizing.rule_for(planner, POSITION_DIMS, model)


@functools.lru_cache(maxsize=4)
def _steps_to_go(path: str):
    return load_steps_to_go(path)


def evaluate(checkpoint, config: Maze2DEvalConfig, progress: bool = True, seeds=None) -> Maze2DEvalSummary:
    """Evaluate a diffusion checkpoint on config.episodes seeded episodes of the maze (or on the
    episodes of the given `seeds`, e.g. the ones a run failed)."""
    started = time.perf_counter()
    planner, step = _load_planner(checkpoint, config)
    env = Maze2DEnv(config.maze, multi_goal=config.multi_goal,
                    obstacles=config.obstacles if config.obstacles_physical else ())
    results = []
    seeds = episode_seeds(config.seed, config.episodes) if seeds is None else seeds
    seeds = tqdm(seeds, desc=f"eval {config.maze}", disable=not progress)
    for seed in seeds:
        results.append(evaluate_episode(env, planner, config, seed))
        seeds.set_postfix(score=f"{np.mean([r.normalized_score for r in results]):.1f}")
    return Maze2DEvalSummary(str(checkpoint), step, config, results, time.perf_counter() - started)


def _episode_result(env, seed, start, goal, rewards, plan_ms, driven, first_plan) -> Maze2DEpisodeResult:
    """Package an episode's record; steps_to_goal counts env steps until the first reward."""
    rewards = np.asarray(rewards)
    reached = bool(np.any(rewards > 0))
    episode_return = float(rewards.sum())
    return Maze2DEpisodeResult(seed, start, goal[:2].copy(), episode_return,
                         env.normalized_score(episode_return), reached,
                         int(np.argmax(rewards > 0)) + 1 if reached else None,
                         plan_ms, np.array(driven),
                         np.zeros((0, len(goal))) if first_plan is None else np.asarray(first_plan, dtype=np.float64))


def maze2d_segments(kind: str = "linear"):
    """Segment filling for a Maze2D state (x, y, vx, vy) at the simulator's step."""
    return PointMass.segments(kind, TIMESTEP)


def _load_planner(checkpoint, config: Maze2DEvalConfig) -> tuple[Planner, int]:
    """The checkpoint's planner (flat, or hierarchical for a subgoal model) and training step;
    rejects a model of another maze."""
    device = resolve_device(config.device)
    _, _, saved = read_checkpoint(checkpoint)
    trained_on = _maze_of(saved.env)
    if trained_on is not None and trained_on != config.maze:
        raise ValueError(f"checkpoint {checkpoint} was trained on {saved.env!r}, not maze {config.maze!r}")
    if (saved.observation_dim, saved.action_dim) != (4, 2):
        raise ValueError(f"checkpoint {checkpoint} is not a Maze2D model: observation/action dims "
                         f"{saved.observation_dim}/{saved.action_dim}, expected 4/2")
    planner = load_planner(checkpoint, config.planner_config(), device,
                           segments=maze2d_segments(config.segments), low_level=config.low_level)
    return planner, saved.step


def _maze_of(env_name: str) -> str | None:
    """'umaze' for 'maze2d-umaze-v1' (D4RL names); None for any other name."""
    if not env_name.startswith("maze2d-"):
        return None
    return env_name.removeprefix("maze2d-").split("-")[0]


def _require_int(name: str, value, minimum: int) -> None:
    """ValueError unless value is an int (not a bool) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"eval {name} must be an integer >= {minimum}, got {value!r}")
