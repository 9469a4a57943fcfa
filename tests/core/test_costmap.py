"""Obstacles at test time: an occupancy map as a differentiable cost, and candidates ranked by it."""
import numpy as np
import pytest
import torch

from diffuser_core.planar.costmap import (
    KEEP_OFF,
    ClearanceCost,
    ObstacleCost,
    OccupancyMap,
    costmap_guide,
    geodesic_distance,
)


@pytest.fixture
def tiny_planner(trained_toy, toy_normalizer):
    """The toy model (2-D states, straight lines) as a planner."""
    from diffuser_core.planning.planner import Planner, PlannerConfig

    from .toy import HORIZON

    return Planner(trained_toy[0].ema.model, toy_normalizer, PlannerConfig(horizon=HORIZON, seed=0, sampler="ddim",
                                                                           denoising_steps=4))


# a 4 x 4 m map at 0.1 m, one 1 x 1 m block in the middle
BLOCK = OccupancyMap.from_boxes([((2.0, 2.0), (0.5, 0.5))], (0.0, 4.0, 0.0, 4.0), 0.1)


def test_the_signed_distance_is_negative_inside_and_grows_away_from_the_block():
    field = BLOCK.signed_distance()
    centers = BLOCK.cell_centers()
    at = lambda x, y: field[np.argmin(np.abs(centers[:, 0, 1] - y)), np.argmin(np.abs(centers[0, :, 0] - x))]
    assert at(2.0, 2.0) < -0.3 and at(2.0, 3.0) == pytest.approx(0.45, abs=0.06)
    assert at(2.0, 3.5) > at(2.0, 3.0) > 0
    assert at(0.2, 0.2) > 0 and BLOCK.occupied.sum() == 100  # the 1 x 1 m block covers 10 x 10 cells


def test_the_clearance_cost_pushes_planned_positions_out_of_the_block():
    cost = ClearanceCost(BLOCK, margin=0.3)
    xy = torch.tensor([[[1.8, 2.1], [3.5, 3.5]]], dtype=torch.float64, requires_grad=True)
    value = cost(xy)
    value.sum().backward()
    assert value.item() > 0
    assert xy.grad[0, 0, 0] > 0  # left of the centre: the gradient points in, descent moves it out (left)
    assert torch.all(xy.grad[0, 1] == 0)  # far from the block: no cost, no push


def test_the_route_distance_goes_around_the_block():
    field = geodesic_distance(BLOCK, (3.5, 2.0))
    centers = BLOCK.cell_centers()
    row = np.argmin(np.abs(centers[:, 0, 1] - 2.0))
    west, east = field[row, np.argmin(np.abs(centers[0, :, 0] - 0.5))], field[row, np.argmin(np.abs(centers[0, :, 0] - 3.0))]
    assert west > 3.2  # straight-line 3 m, but the block is in the way (around it: 3.3)
    assert east == pytest.approx(0.5, abs=0.1)


def test_candidates_that_enter_the_block_rank_last():
    cost = ObstacleCost(BLOCK, goal_xy=(3.5, 2.0))
    through = np.stack([np.linspace(0.5, 3.5, 30), np.full(30, 2.0)], -1)
    around = np.concatenate([np.stack([np.linspace(0.5, 0.5, 10), np.linspace(2.0, 3.2, 10)], -1),
                             np.stack([np.linspace(0.5, 3.5, 10), np.full(10, 3.2)], -1),
                             np.stack([np.full(10, 3.5), np.linspace(3.2, 2.0, 10)], -1)])
    ranks = cost.rank(np.stack([through, around]))
    assert cost.entered(np.stack([through, around])).tolist() == [True, False] and ranks[1] < ranks[0]
    passing = lambda y: np.stack([np.linspace(0.5, 3.5, 30), np.full(30, y)], -1)[None]
    assert not cost.entered(passing(2.5 + KEEP_OFF + 0.05))[0]  # clear of the block by more than KEEP_OFF
    assert cost.entered(passing(2.5 + 0.5 * KEEP_OFF))[0]  # closer than the robot's radius: an entry


def test_walls_of_the_static_map_are_not_obstacles_to_enter():
    walls = OccupancyMap.from_boxes([((2.0, 0.5), (0.5, 0.5))], (0.0, 4.0, 0.0, 4.0), 0.1)
    both = OccupancyMap(walls.occupied | BLOCK.occupied, 0.1, (0.0, 0.0))
    cost = ObstacleCost(both, goal_xy=(3.5, 3.5), static=walls)
    along_the_wall = np.stack([np.linspace(0.5, 3.5, 30), np.full(30, 1.05)], -1)[None]  # grazes the wall
    assert not cost.entered(along_the_wall)[0] and ObstacleCost(both, (3.5, 3.5)).entered(along_the_wall)[0]


def test_a_planner_samples_candidates_in_one_batch_and_keeps_the_cheapest(tiny_planner):
    start, goal = np.zeros(tiny_planner.observation_dim), np.ones(tiny_planner.observation_dim)
    chosen = {}

    def rank(plans):
        chosen["count"] = len(plans)
        costs = -plans[:, 1, 0]  # prefer the candidate whose first step goes furthest in x
        chosen["best"] = plans[np.argmin(costs)].copy()
        return costs

    result = tiny_planner.plan(start, goal=goal, candidates=5, rank=rank)
    assert chosen["count"] == 5
    np.testing.assert_allclose(result.observations, chosen["best"], atol=1e-6)
    tiny_planner.reset()
    tiny_planner.generator.manual_seed(0)
    single = tiny_planner.plan(start, goal=goal)
    assert single.observations.shape == result.observations.shape
    with pytest.raises(ValueError, match="candidates"):
        tiny_planner.plan(start, goal=goal, candidates=0)


def test_the_costmap_guide_acts_on_the_position_columns(tiny_planner):
    guide = costmap_guide(ClearanceCost(BLOCK, 0.3), tiny_planner.normalizer, tiny_planner.action_dim, (0, 1), 1.0)
    x = torch.zeros(2, 8, tiny_planner.action_dim + tiny_planner.observation_dim)
    assert guide(x, torch.zeros(2, dtype=torch.long)).shape == (2,)
    with pytest.raises(ValueError, match="2 position columns"):
        costmap_guide(ClearanceCost(BLOCK, 0.3), tiny_planner.normalizer, 0, (0, 1, 2), 1.0)


def test_the_route_goes_around_an_obstacle_and_its_waypoint_lies_on_it():
    from diffuser_core.planar.costmap import Route
    wall = OccupancyMap.from_boxes([((2.0, 1.5), (0.25, 1.5))], (0.0, 4.0, 0.0, 4.0), 0.1)  # x=2, y in [0, 3)
    route = Route(wall, goal_xy=(3.5, 0.5), clearance=0.2)
    assert route.length((0.5, 0.5)) > 5.0  # up past the wall's end at y=3 and back down, not straight across
    waypoint = route.waypoint((0.5, 0.5), reach=2.0)
    assert waypoint[1] > 1.5 and waypoint[0] < 2.0  # 2 m along: heading up the near side
    assert np.allclose(route.waypoint((0.5, 0.5), reach=50.0), (3.5, 0.5))  # far enough: the goal itself


def test_a_diagonal_step_cannot_squeeze_between_walls_that_meet_at_a_corner():
    corner = np.zeros((2, 2), dtype=bool)
    corner[0, 1] = corner[1, 0] = True
    field = geodesic_distance(OccupancyMap(corner, 1.0, (0.0, 0.0)), (0.5, 0.5))
    assert field[1, 1] > 2.0  # unreachable: not sqrt(2) through the corner


def test_avoidance_plans_unchanged_without_obstacles_and_guided_batched_routed_with_them(tiny_planner):
    from diffuser_core.planar.avoidance import AvoidanceSettings, ObstacleAvoidance
    walls = OccupancyMap.from_boxes([((2.0, 1.5), (0.25, 1.5))], (0.0, 4.0, 0.0, 4.0), 0.1)
    settings = AvoidanceSettings(costmap_weight=5.0, candidates=3, route_reach=1.0)
    known = ObstacleAvoidance(walls, (3.5, 0.5), settings, static=walls)  # only walls the model knows
    assert not known.active and known.route is None
    assert known.planning_arguments(tiny_planner.normalizer, tiny_planner.action_dim, (0, 1)) == {}
    added = ObstacleAvoidance(walls, (3.5, 0.5), settings)  # every occupied cell is an obstacle
    arguments = added.planning_arguments(tiny_planner.normalizer, tiny_planner.action_dim, (0, 1))
    assert added.active and added.route is not None
    assert arguments["candidates"] == 3 and len(arguments["guides"]) == 1
    assert ObstacleAvoidance(walls, (3.5, 0.5), AvoidanceSettings(costmap_weight=0.0)).planning_arguments(
        tiny_planner.normalizer, tiny_planner.action_dim, (0, 1)).keys() == {"candidates", "rank"}
    with pytest.raises(ValueError, match="candidates"):
        AvoidanceSettings(candidates=0)
