"""The classical limits of Maze2D on the same starts and goals as the diffusion planner: D4RL's own
waypoint expert (the controller that generated the data), and the shortest free route on the maze's
map (planar.route_planner) timed and tracked by the point mass's own rule in the same receding loop.
"""
from __future__ import annotations

import numpy as np

from diffuser_core.planar.route_planner import RoutePlanner

from .data import WaypointExpert
from .env import Maze2DEnv
from .evaluation import Maze2DEpisodeResult, _episode_result, obstacle_costmap, wall_contact
from .layouts import TIMESTEP
from .point_mass import POSITION_DIMS, VELOCITY_DIMS


class NoRandomness:
    """A generator stand-in for planners that draw no random numbers (the evaluation seeds one)."""

    def manual_seed(self, seed: int) -> None:
        """Nothing to seed."""


def route_planner(maze: str, speed: float, acceleration: float, obstacles: tuple = ()) -> RoutePlanner:
    """The shortest-route planner on the costmap maze2d_sim publishes, in the point mass's states."""
    planner = RoutePlanner(obstacle_costmap(maze, obstacles), 4, POSITION_DIMS, VELOCITY_DIMS, speed, acceleration,
                           TIMESTEP)
    planner.generator = NoRandomness()
    return planner


def expert_episode(env: Maze2DEnv, seed: int, start_cell=None, episode_steps: int | None = None) -> Maze2DEpisodeResult:
    """One episode driven by D4RL's waypoint expert to the env's goal (reset as evaluate_episode does)."""
    observation = env.reset(seed=seed, start_cell=start_cell)
    start, goal = observation.copy(), np.array([*env.target, 0.0, 0.0])
    expert = WaypointExpert(env.layout, np.random.default_rng(seed))
    driven, rewards = [observation[:2].copy()], []
    for _ in range(episode_steps or env.max_episode_steps):
        ax, ay, _ = expert.action(*observation.tolist(), goal[:2])
        observation, reward, _, _ = env.step(np.array([ax, ay]))
        driven.append(observation[:2].copy())
        rewards.append(reward)
    result = _episode_result(env, seed, start, goal, rewards, [], driven, None)
    result.wall_contact_steps = int(np.count_nonzero(wall_contact(env.grid, np.asarray(driven[1:]))))
    return result
