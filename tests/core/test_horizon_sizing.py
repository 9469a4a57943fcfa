"""Sizing a plan from the start and the goal (diffuser_core.planning.horizon): bounds round up to the
planner's multiple and clip, the straight-line and learned rules, the settings' checks, and the
loop asking the rule for first plans (and for replans that do not shrink)."""
from types import SimpleNamespace

import numpy as np
import pytest

from diffuser_core.planning.horizon import HorizonBounds, HorizonSizing, LearnedHorizon, StraightLineHorizon
from diffuser_core.planning.receding import GoalRun, LoopSettings, RecedingController
from diffuser_core.planning.replanning import ReplanningPolicy, TimedPlan

XY = (0, 1)
START = np.zeros(4)
GOAL = np.array([3.0, 4.0, 0.0, 0.0])  # 5 units from START


class FixedSteps:
    """A steps-to-go stand-in that predicts `steps` for any pair, and records what it was asked."""

    def __init__(self, steps):
        self.steps, self.asked = steps, []

    def predict(self, start, goal):
        self.asked.append((np.asarray(start), np.asarray(goal)))
        return np.asarray(float(self.steps))


def test_bounds_round_up_to_the_multiple_then_clip():
    bounds = HorizonBounds(multiple=8, min_horizon=16, max_horizon=96)
    assert [bounds.fit(w) for w in (1, 16, 17, 24, 24.5, 95, 1000)] == [16, 16, 24, 24, 32, 96, 96]
    assert HorizonBounds(1, 1, 500).fit(286.2) == 287


@pytest.mark.parametrize("multiple, low, high, words", [
    (8, 12, 96, "multiples of 8"), (8, 16, 100, "multiples of 8"), (4, 64, 32, "exceeds"),
    (0, 16, 32, "multiple must be a positive integer"), (4, 16, 32.0, "max_horizon must be a positive integer"),
])
def test_bad_bounds_are_named(multiple, low, high, words):
    with pytest.raises(ValueError, match=words):
        HorizonBounds(multiple, low, high)


def test_a_wanted_horizon_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        HorizonBounds(4, 4, 64).fit(float("nan"))


def test_the_straight_line_rule_uses_the_position_distance():
    rule = StraightLineHorizon(per_unit=10.0, offset=5.0, position_dims=XY, bounds=HorizonBounds(8, 16, 512))
    assert rule.horizon_to(START, GOAL) == 56  # 10 * 5 + 5 = 55, rounded up to 56
    assert rule.horizon_to(START, START) == 16  # 5, raised to the shortest
    far = np.array([300.0, 400.0, 0.0, 0.0])
    assert rule.horizon_to(START, far) == 512
    with pytest.raises(ValueError, match="per_unit"):
        StraightLineHorizon(-1.0, 0.0, XY, HorizonBounds(1, 1, 8))


def test_the_learned_rule_scales_the_predicted_steps_and_adds_the_margin():
    steps = FixedSteps(40.0)
    rule = LearnedHorizon(steps, scale=1.5, margin=10.0, bounds=HorizonBounds(4, 16, 256))
    assert rule.horizon_to(START, GOAL) == 72  # 1.5 * 40 + 10 = 70 -> 72
    assert np.array_equal(steps.asked[0][1], GOAL)  # the full states go to the model (it picks its columns)
    assert LearnedHorizon(FixedSteps(1000.0), 1.0, 0.0, HorizonBounds(4, 16, 256)).horizon_to(START, GOAL) == 256
    with pytest.raises(ValueError, match="scale > 0"):
        LearnedHorizon(steps, 0.0, 0.0, HorizonBounds(4, 16, 256))


def test_sizing_settings_make_the_rule_for_a_planner():
    planner = SimpleNamespace(horizon=40, horizon_multiple=4)
    assert HorizonSizing().rule_for(planner, XY) is None  # fixed: the planner's own horizon
    straight = HorizonSizing("straight", per_unit=10.0, offset=5.0).rule_for(planner, XY)
    assert straight.bounds == HorizonBounds(4, 16, 80) and straight.horizon_to(START, GOAL) == 56
    learned = HorizonSizing("learned", steps_to_go="unused.safetensors", scale=2.0, min_horizon=8, max_horizon=60)
    rule = learned.rule_for(planner, XY, steps_to_go=FixedSteps(25.0))
    assert rule.bounds == HorizonBounds(4, 8, 60) and rule.horizon_to(START, GOAL) == 52


@pytest.mark.parametrize("settings, words", [
    ({"rule": "longest"}, "horizon rule must be one of"), ({"rule": "learned"}, "steps_to_go file"),
    ({"rule": "fixed", "steps_to_go": "model.safetensors"}, "steps_to_go file"),
])
def test_bad_sizing_settings_are_named(settings, words):
    with pytest.raises(ValueError, match=words):
        HorizonSizing(**settings)


def test_the_policy_sizes_first_plans_and_replans_that_do_not_shrink():
    rule = StraightLineHorizon(10.0, 5.0, XY, HorizonBounds(4, 16, 256))
    plan = TimedPlan(np.linspace(START, GOAL, 64), np.zeros((64, 2)), 0.0, 0.0)
    fixed_length = ReplanningPolicy(LoopSettings(shrink_horizon=False), 0.5, XY, sizing=rule)
    assert fixed_length.horizon(None, START, 0.0, GOAL) == 56
    assert fixed_length.horizon(plan, START, 0.1, GOAL) == 56
    assert ReplanningPolicy(LoopSettings(shrink_horizon=False), 0.5, XY).horizon(None, START, 0.0, GOAL) is None


def test_the_loop_plans_its_first_plan_with_the_sized_horizon():
    calls = []

    def plan(state, goal=None, horizon=None, **arguments):
        calls.append(horizon)
        steps = horizon or 20
        return SimpleNamespace(observations=np.linspace(state, goal, steps), actions=np.zeros((steps, 2)),
                               plan_time_ms=1.0)

    planner = SimpleNamespace(horizon=20, horizon_multiple=4, reset=lambda: None, plan=plan)
    robot = SimpleNamespace(command_dim=2, position_dims=XY, distance=lambda s, g: float(np.hypot(*(s - g)[:2])))
    sizing = StraightLineHorizon(10.0, 5.0, XY, HorizonBounds(4, 16, 256))
    controller = RecedingController(planner, robot, LoopSettings(shrink_horizon=True), lambda: 0.0, sizing=sizing)
    assert controller.plan_tick(GoalRun(GOAL, 0.5), START, 0.0) is not None
    assert calls == [56]
    controller.update(LoopSettings(shrink_horizon=False))
    assert controller.policy.sizing is sizing  # new loop settings keep the sizing
