"""A planar robot among an occupancy map's obstacles, as the receding loop sees a map
(diffuser_core.planning.receding.Surroundings): where to aim (the free route's waypoint), what the
planner gets (the costmap guide, candidates and their ranking), and the keep-out shield on every
command. Cells the static map holds (the walls the model was trained among) are not obstacles.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from diffuser_core.planar.avoidance import AvoidanceSettings, ObstacleAvoidance, keep_out_shield
from diffuser_core.planar.costmap import KeepOut, OccupancyMap, added_cells
from diffuser_core.planar.shield import Braking

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanarBody:
    """What the planar wing needs of a robot: its state's position and velocity columns, how
    surely it brakes, and its command's bound on each axis."""

    position_dims: tuple[int, int]
    velocity_dims: tuple[int, int]
    braking: Braking
    command_limit: float = 1.0


class PlanarSurroundings:
    """The loop's view of `occupancy` for a planar `body`. `known`: the map its model was trained
    among (a maze's walls; None: none). Plans avoid the cells `occupancy` adds to it, or every
    occupied cell under `whole_map`; the keep-out shield brakes only before the added cells (the
    known walls stop the robot physically, and braking before every wall would slow it everywhere)."""

    def __init__(self, occupancy: OccupancyMap, known: OccupancyMap | None, settings: AvoidanceSettings,
                 body: PlanarBody):
        static = None if settings.whole_map else known
        self.occupancy, self.static, self.settings, self.body = occupancy, static, settings, body
        self.obstacle_cells = int(added_cells(occupancy, static).sum())
        self.keep_out = KeepOut(occupancy, static)
        self.shield = (keep_out_shield(occupancy, known, body.braking, body.command_limit)
                       if settings.costmap_shield else None)
        self.avoidances: dict[tuple, ObstacleAvoidance | None] = {}

    def avoidance(self, goal: np.ndarray) -> ObstacleAvoidance | None:
        """The avoidance toward `goal` (built once per goal); None without obstacles, or when the map
        cannot be planned among toward it (then plans are made without it, and the reason logged)."""
        goal_xy = tuple(np.round(np.asarray(goal, dtype=np.float64)[list(self.body.position_dims)], 6))
        if goal_xy not in self.avoidances:
            try:
                avoidance = ObstacleAvoidance(self.occupancy, goal_xy, self.settings, static=self.static,
                                              keep_out=self.keep_out)
            except Exception as error:  # a map that cannot be planned among leaves plans unguided
                LOG.error("costmap unusable toward %s, planning without it: %r", goal_xy, error)
                avoidance = None
            self.avoidances[goal_xy] = avoidance if avoidance is not None and avoidance.active else None
        return self.avoidances[goal_xy]

    @property
    def retries(self) -> int:
        return self.settings.route_retries

    def aim(self, state: np.ndarray, goal: np.ndarray, current: np.ndarray | None = None, attempt: int = 0
            ) -> tuple[np.ndarray, tuple[int, ...] | None, int | None] | None:
        """Where the next plan goes and how long it is: the free route's point `reach` ahead (positions
        only) while the route to `goal` is longer than that, else the goal; the horizon from the route
        that remains to it (route_horizon + route_steps_per_m per metre). `reach` is route_reach, and
        on a later `attempt` (a plan entered an obstacle) half of the shorter of it and the route, each
        time. A waypoint `current` (the tracked plan's) is kept until the robot is within half of
        route_reach of it, so a plan is not replaced for every step the robot makes along the route.
        None: plan to the goal with the loop's own horizon (no obstacles, or neither reach nor steps
        per metre)."""
        avoidance, settings = self.avoidance(goal), self.settings
        route = avoidance.route if avoidance is not None else None
        if route is None:
            return None
        dims = list(self.body.position_dims)
        xy = np.asarray(state, dtype=np.float64)[dims]
        length = route.length(xy)
        reach = self.reach(attempt, length)
        if 0 < reach < length:
            if current is not None and attempt == 0 and self.still_ahead(xy, current, goal):
                return np.asarray(current), tuple(self.body.position_dims), self.route_steps(reach)
            waypoint = np.array(goal, dtype=np.float64)
            waypoint[dims] = route.waypoint(xy, reach)
            return waypoint, tuple(self.body.position_dims), self.route_steps(reach)
        if settings.route_steps_per_m > 0:
            return np.asarray(goal), None, self.route_steps(length)
        return None

    def reach(self, attempt: int, length: float) -> float:
        """Metres of route a plan covers: route_reach (0: none, plan to the goal), and on a retry
        half of the shorter of it and the route that remains, halved again each time."""
        if attempt == 0:
            return self.settings.route_reach
        return min(self.settings.route_reach or length, length) / 2 ** attempt

    def clear(self, plan_observations: np.ndarray) -> bool:
        """Whether a plan's positions keep out of every obstacle (closer than the robot's radius counts
        as in); True without obstacles."""
        positions = np.asarray(plan_observations, dtype=np.float64)[None, :, list(self.body.position_dims)]
        return not bool(self.keep_out.entered(positions)[0])

    def still_ahead(self, xy: np.ndarray, waypoint: np.ndarray, goal: np.ndarray) -> bool:
        """Whether a route waypoint (not the goal) is still more than half of route_reach away."""
        dims = list(self.body.position_dims)
        waypoint, goal = np.asarray(waypoint, dtype=np.float64), np.asarray(goal, dtype=np.float64)
        return (not np.allclose(waypoint[dims], goal[dims])
                and float(np.linalg.norm(waypoint[dims] - xy)) > self.settings.route_reach / 2)

    def route_steps(self, metres: float) -> int | None:
        """Plan steps for `metres` of route (None: the planner's own horizon)."""
        steps = round(self.settings.route_horizon + self.settings.route_steps_per_m * metres)
        return steps or None

    def planning_arguments(self, goal: np.ndarray, planner) -> dict:
        """The costmap guide, candidates and rank toward `goal` (none without obstacles)."""
        avoidance = self.avoidance(goal)
        if avoidance is None:
            return {}
        return avoidance.planning_arguments(planner.normalizer, planner.action_dim, self.body.position_dims)

    def guard(self, state: np.ndarray, command: np.ndarray) -> np.ndarray:
        """The command through the keep-out shield (unchanged without one)."""
        if self.shield is None:
            return command
        state = np.asarray(state, dtype=np.float64)
        return self.shield.filter(state[list(self.body.position_dims)], state[list(self.body.velocity_dims)], command)


def aligned_static(walls: OccupancyMap | None, like: OccupancyMap) -> OccupancyMap | None:
    """`walls` when they lie on `like`'s grid (same shape and origin), else None (every occupied
    cell of `like` is then an obstacle)."""
    if walls is None:
        return None
    same = walls.occupied.shape == like.occupied.shape and np.allclose(walls.origin, like.origin)
    return walls if same else None

