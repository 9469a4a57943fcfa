"""The differential-drive robot's evaluation: random start and goal points in its world, driven by the
planner node's receding loop (diffdrive_controller) in simulated time, the physics at 100 Hz.

An episode succeeds when the loop says the goal is reached (within goal_tolerance) before
`time_limit` simulated seconds. A planning tick runs every tick period of the loop, a control tick
at `control_rate`; plans take no simulated time (the node's latency is the difference). The loop
plans among the costmap diffdrive_sim publishes (the layout's walls and any obstacle cells).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planning.loading import PlanningSettings, load_planner
from diffuser_core.scenario import resolve_data_path
from diffuser_core.planning.receding import GoalRun, LoopSettings, SimulatedClock
from diffuser_core.scores import episode_seeds, standard_error

from .robot import GOAL_DIMS, POSITION_DIMS, V_MAX, W_MAX, diffdrive_controller
from .world import DiffDriveWorld


@dataclass(frozen=True)
class DiffDriveEvalConfig:
    """What an evaluation runs: the world, the episodes, the loop's, planner's and map's settings."""

    layout: str = "room"
    episodes: int = 100
    seed: int = 0
    time_limit: float = 60.0  # simulated s per goal
    min_goal_distance: float = 1.0  # m between start and goal
    control_rate: float = 20.0
    limits: tuple[float, float] = (V_MAX, W_MAX)
    goal_dims: tuple[int, ...] = GOAL_DIMS
    loop: LoopSettings = field(default_factory=LoopSettings)
    planning: PlanningSettings = field(default_factory=PlanningSettings)
    avoidance: AvoidanceSettings = field(default_factory=AvoidanceSettings)

    def __post_init__(self):
        if self.episodes < 1 or self.time_limit <= 0 or self.control_rate <= 0:
            raise ValueError("episodes, time_limit and control_rate must be positive")


@dataclass
class DiffDriveEpisode:
    """One goal: where it started and aimed, whether and when it arrived, how it planned and drove."""

    seed: int
    start: list
    goal: list
    succeeded: bool
    seconds: float
    final_distance: float
    plans: int
    plan_ms: list = field(default_factory=list)
    contact_steps: int = 0
    driven: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {"seed": self.seed, "start": self.start, "goal": self.goal, "succeeded": self.succeeded,
                "seconds": round(self.seconds, 2), "final_distance": round(self.final_distance, 3),
                "plans": self.plans, "plan_ms_median": float(np.median(self.plan_ms)) if self.plan_ms else None,
                "contact_steps": self.contact_steps}


@dataclass
class DiffDriveSummary:
    """The episodes of one evaluation, with the success rate and times."""

    checkpoint: str
    config: DiffDriveEvalConfig
    episodes: list[DiffDriveEpisode]
    wall_seconds: float

    @property
    def success_rate(self) -> float:
        return 100.0 * float(np.mean([episode.succeeded for episode in self.episodes]))

    def times(self) -> np.ndarray:
        return np.array([episode.seconds for episode in self.episodes if episode.succeeded])

    def to_dict(self) -> dict:
        times, plan_ms = self.times(), [ms for episode in self.episodes for ms in episode.plan_ms]
        successes = np.array([float(episode.succeeded) for episode in self.episodes])
        return {"checkpoint": self.checkpoint, "episodes": len(self.episodes), "seed": self.config.seed,
                "layout": self.config.layout, "time_limit_s": self.config.time_limit,
                "success_rate": self.success_rate, "success_standard_error": 100.0 * standard_error(successes),
                "time_to_goal_s_mean": float(times.mean()) if len(times) else None,
                "time_to_goal_s_median": float(np.median(times)) if len(times) else None,
                "plan_ms_median": float(np.median(plan_ms)) if plan_ms else None,
                "plan_ms_p95": float(np.percentile(plan_ms, 95)) if plan_ms else None,
                "contact_episodes": int(sum(episode.contact_steps > 0 for episode in self.episodes)),
                "wall_seconds": round(self.wall_seconds, 1),
                "per_episode": [episode.to_dict() for episode in self.episodes]}



def start_and_goal(world: DiffDriveWorld, seed: int, min_distance: float) -> tuple[np.ndarray, np.ndarray, float]:
    """A random start point and heading and a random goal at least `min_distance` away (same seed, same pair)."""
    rng = np.random.default_rng(seed)
    start = world.random_free_xy(rng)
    for _ in range(1000):
        goal = world.random_free_xy(rng)
        if np.linalg.norm(goal - start) >= min_distance:
            return start, goal, float(rng.uniform(-math.pi, math.pi))
    raise ValueError(f"no goal {min_distance} m from {start.tolist()} in layout {world.layout}")


def evaluate_episode(world: DiffDriveWorld, planner, config: DiffDriveEvalConfig, seed: int,
                     data_models: tuple | None = None) -> DiffDriveEpisode:
    """Drive from a random start to a random goal with the planner node's loop; same seed, same episode.
    `data_models`: (sizing, choice) as _data_models gives them, loaded once for many episodes."""
    sizing, choice = data_models or _data_models(planner, config)
    planner.reset()
    planner.generator.manual_seed(seed)
    start, goal_xy, yaw = start_and_goal(world, seed, config.min_goal_distance)
    state = world.reset(start_xy=start, yaw=yaw)
    clock = SimulatedClock()
    controller = diffdrive_controller(planner, config.loop, clock, config.layout, *config.limits,
                                      avoidance=config.avoidance, goal_dims=config.goal_dims,
                                      sizing=sizing, choice=choice)
    controller.use_map(world.grid.occupancy_map())  # the costmap diffdrive_sim publishes
    goal = np.zeros_like(state)
    goal[:2] = goal_xy
    run = GoalRun(goal, config.loop.goal_tolerance)
    plan_every = max(1, round(config.loop.tick_period / world.dt))
    control_every = max(1, round(1.0 / (config.control_rate * world.dt)))
    command, plan_ms, contact, driven = np.zeros(2), [], 0, [state[:2].copy()]
    for step in range(int(round(config.time_limit / world.dt))):
        clock.time = step * world.dt
        if step % plan_every == 0 and (result := controller.plan_tick(run, state, clock.time)):
            plan_ms.append(result.plan_time_ms)
        if step % control_every == 0:
            decision = controller.control(run, state, clock.time)
            if decision.outcome:
                run.finish(decision.outcome, decision.message)
            command = decision.command if decision.command is not None else np.zeros(2)
        if run.succeeded:
            break
        state = world.step(command)
        contact += int(world.in_contact())
        driven.append(state[:2].copy())
    return DiffDriveEpisode(seed, start.tolist(), goal_xy.tolist(), run.succeeded, clock.time,
                            controller.robot.distance(state, goal), run.replans, plan_ms, contact, np.asarray(driven))


def _data_models(planner, config: DiffDriveEvalConfig) -> tuple:
    """(sizing rule, plan choice) of the planning settings' models of the data (None where unused)."""
    planning = config.planning
    return planning.horizon_sizing(resolve_data_path).rule_for(planner, POSITION_DIMS), \
        planning.plan_choice(resolve_data_path)


def evaluate(checkpoint: str, config: DiffDriveEvalConfig, progress: bool = True) -> DiffDriveSummary:
    """Evaluate a checkpoint on config.episodes seeded start-goal pairs."""
    started = time.perf_counter()
    planner = load_planner(checkpoint, config.planning.planner_config())
    world = DiffDriveWorld(config.layout, v_max=config.limits[0], w_max=config.limits[1])
    data_models = _data_models(planner, config)  # their files read once, not per episode
    episodes = []
    seeds = tqdm(episode_seeds(config.seed, config.episodes), desc=f"eval diffdrive {config.layout}",
                 disable=not progress)
    for seed in seeds:
        episodes.append(evaluate_episode(world, planner, config, seed, data_models))
        seeds.set_postfix(success=f"{np.mean([e.succeeded for e in episodes]) * 100:.0f}%")
    return DiffDriveSummary(str(checkpoint), config, episodes, time.perf_counter() - started)
