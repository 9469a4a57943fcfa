"""The shared replanning policy: replan decisions, plan age, settling, executed steps, horizons."""
import numpy as np
import pytest

from diffuser_core.planning.horizon import ShrinkingHorizon
from diffuser_core.planning.receding import LoopSettings
from diffuser_core.planning.replanning import ReplanningPolicy, TimedPlan

XY = (0, 1)

GOAL = np.array([1.0, 0.0, 0.0, 0.0])


def line_plan(state_time=0.0, start_time=0.0, steps=101, end=1.0):
    """A plan moving along x from 0 to `end` in `steps` states."""
    xs = np.linspace(0.0, end, steps)
    observations = np.stack([xs, 0 * xs, 0 * xs + 1.0, 0 * xs], axis=1)
    return TimedPlan(observations, np.zeros((steps, 2)), state_time, start_time)


def state_at(x, y=0.0):
    return np.array([x, y, 1.0, 0.0])


def test_every_tick_without_a_deviation_threshold():
    policy = ReplanningPolicy(LoopSettings(replan_deviation=0.0), 0.5, XY)
    assert policy.needs_plan(state_at(0.1), 0.1, GOAL, 0.5, line_plan())
    assert policy.needs_plan(state_at(0.0), 0.0, GOAL, 0.5, None)


def test_a_tracked_plan_is_kept_until_the_robot_strays_or_it_ages():
    policy = ReplanningPolicy(LoopSettings(replan_deviation=0.3, settle_distance=0.2, max_plan_age=2.0), 0.5, XY)
    plan = line_plan(end=5.0, steps=501)
    goal = np.array([5.0, 0.0, 0.0, 0.0])
    assert not policy.needs_plan(state_at(0.5), 0.5, goal, 0.5, plan)   # on the plan, young
    assert policy.needs_plan(state_at(0.5, 0.4), 0.5, goal, 0.5, plan)  # 0.4 m off the plan
    assert policy.needs_plan(state_at(1.05), 1.05, goal, 0.5, plan)     # older than max_plan_age / 2


def test_settling_keeps_an_arriving_plan_and_a_stale_plan_is_not_tracked():
    policy = ReplanningPolicy(LoopSettings(replan_deviation=0.3, settle_distance=1.0, max_plan_age=2.0), 0.5, XY)
    plan = line_plan()
    assert policy.settling(state_at(0.5), GOAL, 0.5, plan)
    assert not policy.needs_plan(state_at(0.9), 1.5, GOAL, 0.5, plan)  # old, but settling onto the goal
    assert policy.too_old(plan, 2.01) and not policy.too_old(plan, 1.99)


def test_executed_and_tracked_steps_count_from_the_plan_start():
    policy = ReplanningPolicy(LoopSettings(plan_dt=0.01), 0.5, XY)
    plan = line_plan(state_time=1.0, start_time=1.2)
    assert policy.executed_steps(None, 3.0) == 0
    assert policy.executed_steps(plan, 1.25) == 5 and policy.tracking_step(plan, 1.25) == 5
    assert policy.tracking_step(plan, 1.0) == 0  # before its start: step 0


def test_horizons_shrink_only_when_asked():
    horizons = ShrinkingHorizon(128, 4, XY)
    plan = line_plan()
    fixed = ReplanningPolicy(LoopSettings(shrink_horizon=False), 0.5, XY, horizons)
    shrinking = ReplanningPolicy(LoopSettings(shrink_horizon=True), 0.5, XY, horizons)
    assert fixed.horizon(plan, state_at(0.5), 0.5, GOAL) is None
    assert shrinking.horizon(None, state_at(0.0), 0.0, GOAL) is None
    assert shrinking.horizon(plan, state_at(0.5), 0.5, GOAL) < 128


@pytest.mark.parametrize("changes", [dict(replan_deviation=-1.0), dict(max_plan_age=0.0),
                                     dict(plan_dt=float("nan")), dict(shrink_horizon=1)])
def test_bad_settings_are_refused(changes):
    with pytest.raises(ValueError):
        LoopSettings(**changes)


def test_a_moved_target_replans_a_kept_plan():
    policy = ReplanningPolicy(LoopSettings(replan_deviation=0.5, max_plan_age=10.0), 0.5, XY)
    target = np.array([4.0, 0.0, 0.0, 0.0])
    plan = TimedPlan(np.zeros((10, 4)), np.zeros((10, 2)), 0.0, 0.0, target)
    assert not policy.needs_plan(np.zeros(4), 0.1, target, 0.5, plan)
    assert policy.needs_plan(np.zeros(4), 0.1, target + np.array([1.0, 0, 0, 0]), 0.5, plan)
