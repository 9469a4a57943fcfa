"""Obstacle avoidance at test time, the one recipe the evaluation, the benchmarks and the planner
node share: an occupancy map and a goal give the costmap guide (every denoising step), a batch of
candidates ranked by cost (the cheapest that enters no obstacle wins) and, optionally, the free
route whose waypoints a plan of bounded reach aims at; and the shield that brakes the robot before
it comes closer than its radius to an obstacle, whatever plan it tracks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .costmap import KEEP_OFF, ObstacleCost, OccupancyMap, Route, added_cells, costmap_guide, obstacle_map
from .shield import KeepOutShield


@dataclass(frozen=True)
class AvoidanceSettings:
    """weight: costmap guide weight (J = -weight * cost; 0 ranks candidates without guiding them);
    candidates: plans sampled in one batch; margin: m kept off occupied cells; route_reach: m of the
    free route a plan aims along (0: plan to the goal); route_horizon: plan steps of a plan to a
    route waypoint (0: the planner's horizon)."""

    weight: float = 30.0
    candidates: int = 8
    margin: float = 0.3
    route_reach: float = 0.0
    route_horizon: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"costmap weight must be >= 0, got {self.weight}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates must be an integer >= 1, got {self.candidates!r}")
        if not (math.isfinite(self.margin) and self.margin > 0):
            raise ValueError(f"costmap margin must be a positive number of metres, got {self.margin}")
        if not (math.isfinite(self.route_reach) and self.route_reach >= 0):
            raise ValueError(f"route reach must be >= 0 m, got {self.route_reach}")
        if isinstance(self.route_horizon, bool) or not isinstance(self.route_horizon, int) or self.route_horizon < 0:
            raise ValueError(f"route horizon must be an integer >= 0, got {self.route_horizon!r}")


def keep_out_shield(occupancy: OccupancyMap, static: OccupancyMap | None, deceleration: float, tick: float,
                    limit: float = 1.0) -> KeepOutShield | None:
    """The shield that keeps a robot (braking surely at `deceleration` m/s^2 under a full command
    lasting `tick` s) its radius (KEEP_OFF) off the cells `occupancy` adds to `static`; None without
    any. It needs no goal and no route, so it is ready the moment a costmap comes."""
    obstacles = obstacle_map(occupancy, static)
    return KeepOutShield(obstacles, KEEP_OFF, deceleration, tick, limit) if obstacles.any_occupied else None


class ObstacleAvoidance:
    """What planning among one map's obstacles toward one goal needs. `static`: the map the model
    was trained among (its walls, on the same grid): only the cells `occupancy` adds are obstacles,
    and without any the planner's arguments are empty (plans are unchanged)."""

    def __init__(self, occupancy: OccupancyMap, goal_xy: Sequence[float], settings: AvoidanceSettings,
                 static: OccupancyMap | None = None):
        self.settings = settings
        self.active = bool(added_cells(occupancy, static).any())
        self.cost = ObstacleCost(occupancy, goal_xy, settings.margin, static=static) if self.active else None
        self.route = (Route(occupancy, goal_xy, settings.margin)
                      if self.active and settings.route_reach > 0 else None)

    def planning_arguments(self, normalizer, action_dim: int, position_dims: Sequence[int]) -> dict:
        """The planner's keyword arguments: guides, candidates and rank (none when no obstacle)."""
        if not self.active:
            return {}
        dims = list(position_dims)
        arguments = {"candidates": self.settings.candidates,
                     "rank": lambda plans: self.cost.rank(plans[..., dims])}
        if self.settings.weight > 0:
            arguments["guides"] = [costmap_guide(self.cost, normalizer, action_dim, position_dims,
                                                 self.settings.weight)]
        return arguments
