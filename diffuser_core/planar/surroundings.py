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
from diffuser_core.planar.costmap import OccupancyMap, added_cells
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
    """The loop's view of `occupancy` for a planar `body`: the obstacles are the cells `occupancy`
    adds to `static` (all of its cells without one)."""

    def __init__(self, occupancy: OccupancyMap, static: OccupancyMap | None, settings: AvoidanceSettings,
                 body: PlanarBody):
        self.occupancy, self.static, self.settings, self.body = occupancy, static, settings, body
        self.obstacle_cells = int(added_cells(occupancy, static).sum())
        self.shield = (keep_out_shield(occupancy, static, body.braking, body.command_limit)
                       if settings.costmap_shield else None)
        self.avoidances: dict[tuple, ObstacleAvoidance | None] = {}

    def avoidance(self, goal: np.ndarray) -> ObstacleAvoidance | None:
        """The avoidance toward `goal` (built once per goal); None without obstacles, or when the map
        cannot be planned among toward it (then plans are made without it, and the reason logged)."""
        goal_xy = tuple(np.round(np.asarray(goal, dtype=np.float64)[list(self.body.position_dims)], 6))
        if goal_xy not in self.avoidances:
            try:
                avoidance = ObstacleAvoidance(self.occupancy, goal_xy, self.settings, static=self.static)
            except Exception as error:  # a map that cannot be planned among leaves plans unguided
                LOG.error("costmap unusable toward %s, planning without it: %r", goal_xy, error)
                avoidance = None
            self.avoidances[goal_xy] = avoidance if avoidance is not None and avoidance.active else None
        return self.avoidances[goal_xy]

    def aim(self, state: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], int | None] | None:
        """The free route's point route_reach ahead (positions only) and the horizon of a plan to it,
        while the route to `goal` is longer than that; None: plan to the goal itself."""
        avoidance, reach = self.avoidance(goal), self.settings.route_reach
        route = avoidance.route if avoidance is not None else None
        dims = list(self.body.position_dims)
        xy = np.asarray(state, dtype=np.float64)[dims]
        if route is None or reach <= 0 or route.length(xy) <= reach:
            return None
        waypoint = np.array(goal, dtype=np.float64)
        waypoint[dims] = route.waypoint(xy, reach)
        return waypoint, tuple(self.body.position_dims), self.settings.route_horizon or None

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


def planar_surroundings(occupancy: OccupancyMap, static: OccupancyMap | None, settings: AvoidanceSettings | None,
                        body: PlanarBody) -> PlanarSurroundings:
    """The surroundings of `body` among `occupancy` (the shipped avoidance settings by default)."""
    return PlanarSurroundings(occupancy, static, settings or AvoidanceSettings(), body)


def aligned_static(walls: OccupancyMap | None, like: OccupancyMap) -> OccupancyMap | None:
    """`walls` when they lie on `like`'s grid (same shape and origin), else None (every occupied
    cell of `like` is then an obstacle)."""
    if walls is None:
        return None
    same = walls.occupied.shape == like.occupied.shape and np.allclose(walls.origin, like.origin)
    return walls if same else None

