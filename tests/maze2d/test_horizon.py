"""Variable-horizon replanning (diffuser_core.planning.horizon): arrival step, the next horizon's bounds and
rounding, and a closed-loop U-Maze episode with the shipped checkpoint that settles at the goal."""
from pathlib import Path

import numpy as np
import pytest
import torch

from diffuser_core.planning.horizon import ShrinkingHorizon, arrival_step
from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, evaluate_episode

XY = (0, 1)
from diffuser_core.planning.planner import Planner

CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "maze2d_umaze.safetensors"
GOAL = np.array([0.0, 0.0, 0.0, 0.0])


def straight_plan(length: int, start_x: float, arrive_at: int) -> np.ndarray:
    """x falls linearly from start_x to 0 at step `arrive_at`, then stays; y = 0."""
    x = np.maximum(0.0, start_x * (1 - np.arange(length) / arrive_at))
    return np.stack([x, np.zeros(length), np.zeros(length), np.zeros(length)], axis=1)


def test_arrival_step_is_where_the_plan_enters_the_radius_for_good():
    plan = straight_plan(64, 4.0, 40)
    assert arrival_step(plan, GOAL, 0.5, XY) == int(np.flatnonzero(plan[:, 0] > 0.5)[-1]) + 1
    assert arrival_step(np.zeros((8, 4)), GOAL, 0.5, XY) == 0
    wandering = plan.copy()
    wandering[-1, 0] = 2.0  # leaves again at the end: not arrived
    assert arrival_step(wandering, GOAL, 0.5, XY) == 64


def test_next_horizon_shrinks_with_progress_within_bounds_and_multiples():
    rule = ShrinkingHorizon(max_horizon=128, multiple=4, position_dims=XY, min_horizon=16, margin=8, arrival_radius=0.25)
    plan = straight_plan(128, 4.0, 100)
    assert rule.next_horizon(None, plan[0], 0, GOAL) == 128  # the first plan: the full horizon
    horizons = [rule.next_horizon(plan, plan[k], k, GOAL) for k in (0, 30, 60, 90, 120)]
    assert horizons == sorted(horizons, reverse=True) and horizons[-1] == 16
    assert all(h % 4 == 0 and 16 <= h <= 128 for h in horizons)
    arrival = arrival_step(plan, GOAL, 0.25, XY)
    assert rule.next_horizon(plan, plan[30], 30, GOAL) == int(np.ceil((arrival - 30 + 8) / 4) * 4)
    # a robot still at the start 30 steps later (it lagged) gets the whole remaining route
    assert rule.next_horizon(plan, plan[0], 30, GOAL) > rule.next_horizon(plan, plan[30], 30, GOAL)


@pytest.mark.parametrize("bad", [dict(max_horizon=130, multiple=4), dict(max_horizon=128, multiple=4, min_horizon=0),
                                 dict(max_horizon=128, multiple=4, arrival_radius=0.0)])
def test_bad_rules_are_refused(bad):
    with pytest.raises(ValueError):
        ShrinkingHorizon(position_dims=XY, **bad)


def test_replanning_with_a_shrinking_horizon_settles_at_the_umaze_goal():
    """Closed loop: replan every 10 steps (DDIM 8, warm start), horizons shrinking with the route,
    the goal held once within the reward radius. With a fixed 128-step horizon this loop never
    settles (results/perf.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = Maze2DEvalConfig(sampler="ddim", denoising_steps=8, replan_every=10, warm_start=True,
                            shrink_horizon=True, hold_at_goal=True)
        planner = Planner.from_checkpoint(CHECKPOINT, config.planner_config())
        horizons = []
        original = planner.plan

        def recording_plan(*args, **kwargs):
            result = original(*args, **kwargs)
            horizons.append(len(result.observations))
            return result

        planner.plan = recording_plan
        episode = evaluate_episode(Maze2DEnv("umaze"), planner, config, seed=0, start_cell=(3, 3))
    finally:
        torch.set_num_threads(threads)
    assert episode.reached and episode.normalized_score > 100, episode.normalized_score
    assert horizons[0] == 128 and min(horizons) < 64  # later replans are shorter
    assert episode.plan_calls < 300 // 10  # no replanning while the goal is held
    assert np.hypot(*(episode.driven_xy[-1] - episode.goal)) <= 0.5


def test_shrink_and_hold_need_closed_loop_replanning():
    for name in ("shrink_horizon", "hold_at_goal"):
        with pytest.raises(ValueError, match=f"{name} needs replan_every"):
            Maze2DEvalConfig(**{name: True})
