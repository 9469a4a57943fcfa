"""Obstacle avoidance at test time, the one recipe the evaluation, the benchmarks and the planner
node share: an occupancy map and a goal give the costmap guide (every denoising step), a batch of
candidates ranked by cost (the cheapest that enters no obstacle wins) and, optionally, the free
route whose waypoints a plan of bounded reach aims at; and the shield that brakes the robot before
it comes closer than its radius to an obstacle, whatever plan it tracks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from diffuser_core.planar.costmap import (
    KEEP_OFF,
    KeepOut,
    ObstacleCost,
    OccupancyMap,
    Route,
    added_cells,
    costmap_guide,
    obstacle_map,
)
from diffuser_core.planar.shield import Braking, KeepOutShield
from diffuser_core.settings import check_settings, setting


@dataclass(frozen=True)
class AvoidanceSettings:
    """How a planar robot plans among a costmap's obstacles (the planner node's parameters of the
    same names)."""

    costmap_weight: float = setting(15.0, "guide weight of the obstacles on `costmap` (nav_msgs/OccupancyGrid): "
                                          "J = -weight * cost at every denoising step; 0: rank candidates without "
                                          "guiding", 0.0, live=True)
    candidates: int = setting(16, "plans sampled in one batch per replan while the costmap has obstacles; the "
                                  "cheapest that enters none is kept", 1, 256, live=True)
    costmap_margin: float = setting(0.3, "m kept off occupied costmap cells (cost margin and route clearance)",
                                    0.001, live=True)
    route_reach: float = setting(5.0, "m: among costmap obstacles, plan to the free route's point this far ahead "
                                      "(0: plan to the goal)", 0.0, live=True)
    route_horizon: int = setting(180, "plan steps of a plan to a route point; 0: the planner's horizon", 0, 100000,
                                 live=True)
    costmap_shield: bool = setting(True, "brake the robot before it comes within its radius of a costmap obstacle, "
                                         "whatever the plan it tracks says (diffuser_core.planar.shield)", live=True)
    whole_map: bool = setting(False, "every occupied costmap cell is an obstacle, the walls the model was trained "
                                     "among too (false: only the cells the costmap adds to them)", live=True)
    route_retries: int = setting(0, "plans made afresh toward a point half as far along the route (each time) while a "
                                    "plan still enters an obstacle", 0, 8, live=True)
    route_steps_per_m: float = setting(0.0, "plan steps per metre of free route to a plan's target, added to "
                                            "route_horizon; 0: route_horizon steps to a route point and the loop's own "
                                            "horizon to the goal", 0.0, live=True)

    def __post_init__(self):
        check_settings(self)


def keep_out_shield(occupancy: OccupancyMap, static: OccupancyMap | None, braking: Braking,
                    limit: float = 1.0) -> KeepOutShield | None:
    """The shield that keeps a robot (with this braking model) its radius (KEEP_OFF) off the cells
    `occupancy` adds to `static`; None without any. It needs no goal and no route, so it is ready
    the moment a costmap comes."""
    obstacles = obstacle_map(occupancy, static)
    if not obstacles.any_occupied:
        return None
    return KeepOutShield(obstacles, KEEP_OFF, braking.deceleration, braking.reaction, limit)


class ObstacleAvoidance:
    """What planning among one map's obstacles toward one goal needs. `static`: the map the model
    was trained among (its walls, on the same grid): only the cells `occupancy` adds are obstacles,
    and without any the planner's arguments are empty (plans are unchanged)."""

    def __init__(self, occupancy: OccupancyMap, goal_xy: Sequence[float], settings: AvoidanceSettings,
                 static: OccupancyMap | None = None, keep_out: KeepOut | None = None):
        self.settings = settings
        self.active = bool(added_cells(occupancy, static).any())
        self.cost = (ObstacleCost(occupancy, goal_xy, settings.costmap_margin, static=static, keep_out=keep_out)
                     if self.active else None)
        routed = settings.route_reach > 0 or settings.route_steps_per_m > 0
        self.route = Route(occupancy, goal_xy, settings.costmap_margin) if self.active and routed else None

    def planning_arguments(self, normalizer, action_dim: int, position_dims: Sequence[int]) -> dict:
        """The planner's keyword arguments: guides, candidates and rank (none when no obstacle)."""
        if not self.active:
            return {}
        dims = list(position_dims)
        arguments = {"candidates": self.settings.candidates,
                     "rank": lambda plans: self.cost.rank(plans[..., dims])}
        if self.settings.costmap_weight > 0:
            arguments["guides"] = [costmap_guide(self.cost, normalizer, action_dim, position_dims,
                                                 self.settings.costmap_weight)]
        return arguments
