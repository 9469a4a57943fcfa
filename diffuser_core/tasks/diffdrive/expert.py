"""The scripted expert that drives the differential-drive robot to a goal around walls, for demonstrations:
the shortest free route on the grid's occupancy map (costmap.Route, kept ROUTE_CLEARANCE off the walls),
the point ROUTE_REACH along it pursued with the robot's own pursuit rule, at a speed limit that wanders
smoothly (so no two demonstrations are alike).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diffuser_core.planar.costmap import Route
from diffuser_core.tasks.maze2d.grid import MazeGrid, as_vector

from .layouts import random_free_xy
from .robot import V_MAX, W_MAX, checked_limit, checked_state, pursuit

MAP_RESOLUTION = 0.1  # m per cell of the map the route is found on
ROUTE_CLEARANCE = 0.2  # m the route keeps off the walls (the body's radius and as much again)
ROUTE_REACH = 0.3  # m along the route: the point pursued (the goal itself once nearer)
GOAL_STOP_DISTANCE = 0.02  # m: this close to the goal the expert stands still
SPEED_NOISE = 0.2  # spread of the speed limit's wander, as a fraction of v_max
SPEED_RETURN = 0.05  # per command: how fast the wander returns toward the full speed
MIN_SPEED_FRACTION = 0.4  # the speed limit never wanders below this fraction of v_max
GOAL_NOISE = 0.05  # m: goals are free cells' nominal points + U(-GOAL_NOISE, GOAL_NOISE), clear of the route's clearance
GOAL_MIN_DISTANCE = 0.5  # m: a new goal is at least this far from the robot
GOAL_TOLERANCE = 0.2  # m: a goal is reached this close
GOAL_TIMEOUT = 60.0  # s before the expert gives a goal up


class RouteExpert:
    """Drives to goals on `grid` within (v_max, w_max); `rng` draws the speed wander (`noise`: its spread
    as a fraction of v_max, 0 for none)."""

    def __init__(self, grid: MazeGrid, v_max: float = V_MAX, w_max: float = W_MAX,
                 rng: np.random.Generator | None = None, noise: float = SPEED_NOISE):
        if not (isinstance(noise, (int, float)) and 0 <= noise <= 1):
            raise ValueError(f"noise must be a fraction of v_max in [0, 1], got {noise!r}")
        self.grid, self.noise = grid, float(noise)
        self.v_max, self.w_max = checked_limit(v_max, "v_max"), checked_limit(w_max, "w_max")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.occupancy = grid.occupancy_map(MAP_RESOLUTION)
        self.routes: dict[tuple, Route] = {}
        self.speed_fraction = 1.0

    def route(self, goal_xy) -> Route:
        """The free route to `goal_xy` (found once per goal)."""
        key = tuple(np.round(as_vector(goal_xy, 2, "goal_xy"), 6))
        if key not in self.routes:
            self.routes[key] = Route(self.occupancy, key, ROUTE_CLEARANCE)
        return self.routes[key]

    def command(self, state, goal_xy) -> np.ndarray:
        """(v, w) toward the point ROUTE_REACH along the route from the state to `goal_xy`."""
        state = checked_state(state)
        point = self.route(goal_xy).waypoint(state[:2], ROUTE_REACH)
        return pursuit(state, point, self.v_max * self.wander(), self.w_max, GOAL_STOP_DISTANCE)

    def wander(self) -> float:
        """The next speed limit, as a fraction of v_max: a mean-reverting random walk below 1."""
        step = SPEED_RETURN * (1.0 - self.speed_fraction) + self.noise * math.sqrt(SPEED_RETURN) * self.rng.normal()
        self.speed_fraction = float(np.clip(self.speed_fraction + step, MIN_SPEED_FRACTION, 1.0))
        return self.speed_fraction

    @staticmethod
    def reached(state, goal_xy, tolerance: float) -> bool:
        """Whether the state's position is within `tolerance` of `goal_xy`."""
        state = checked_state(state)
        return math.hypot(state[0] - goal_xy[0], state[1] - goal_xy[1]) <= tolerance


def next_goal(grid: MazeGrid, rng: np.random.Generator, xy=None, min_distance: float = GOAL_MIN_DISTANCE,
              attempts: int = 100) -> np.ndarray:
    """A random goal on a free cell (+ U(-GOAL_NOISE, GOAL_NOISE)), at least `min_distance` from `xy`
    when given (the last draw when none of `attempts` is)."""
    goal = random_free_xy(grid, rng, GOAL_NOISE)
    for _ in range(attempts - 1):
        if xy is None or math.hypot(goal[0] - xy[0], goal[1] - xy[1]) >= min_distance:
            break
        goal = random_free_xy(grid, rng, GOAL_NOISE)
    return goal


@dataclass(frozen=True)
class TourTick:
    """One control tick of a tour: the command, the goal started at this tick (None: none), how the
    previous goal ended at it ("", "reached", "timed out") and whether the tour is over."""

    command: np.ndarray
    new_goal: np.ndarray | None = None
    ended: str = ""
    done: bool = False


class ExpertTour:
    """The expert driving to `goals` random goals one after another (0: forever): the next goal once the
    robot is within `tolerance` of one or `timeout` s have passed since it started. `rng` draws the goals.
    The ROS expert node and the offline rollouts both run it, one tick per command."""

    def __init__(self, expert: RouteExpert, rng: np.random.Generator, goals: int = 0,
                 tolerance: float = GOAL_TOLERANCE, timeout: float = GOAL_TIMEOUT):
        if not isinstance(goals, (int, np.integer)) or goals < 0:
            raise ValueError(f"goals must be a non-negative int (0: forever), got {goals!r}")
        self.tolerance, self.timeout = checked_limit(tolerance, "tolerance"), checked_limit(timeout, "timeout")
        self.expert, self.rng, self.goals = expert, rng, int(goals)
        self.goal: np.ndarray | None = None
        self.started = 0.0
        self.ended, self.reached = 0, 0

    @property
    def done(self) -> bool:
        return 0 < self.goals <= self.ended

    def tick(self, state, now: float) -> TourTick:
        """The command at time `now` (s) from `state`; ends a reached or timed-out goal and starts the next."""
        state = checked_state(state)
        if self.done:
            return TourTick(np.zeros(2), done=True)
        ended = self.end_goal(state, now) if self.goal is not None else ""
        if self.done:
            return TourTick(np.zeros(2), ended=ended, done=True)
        new_goal = None
        if self.goal is None:
            self.goal, self.started = next_goal(self.expert.grid, self.rng, state[:2]), now
            new_goal = self.goal.copy()
        return TourTick(self.expert.command(state, self.goal), new_goal, ended)

    def end_goal(self, state: np.ndarray, now: float) -> str:
        """"reached" or "timed out" when the current goal ends now (then no goal is current), else ""."""
        if self.expert.reached(state, self.goal, self.tolerance):
            outcome = "reached"
            self.reached += 1
        elif now - self.started > self.timeout:
            outcome = "timed out"
        else:
            return ""
        self.goal, self.ended = None, self.ended + 1
        return outcome
