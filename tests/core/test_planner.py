"""Receding-horizon planner: robot units in and out, exact constraints, warm start, errors."""
import numpy as np
import pytest

from diffuser_core.guidance.guides import CostGuide
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.sampling.conditioning import Constraint

from .toy import ACT_DIM, HORIZON, straight_line, tiny_diffusion

START, GOAL = np.array([1.0, -2.0], dtype=np.float32), np.array([-1.5, 2.5], dtype=np.float32)


@pytest.fixture
def model(trained_toy):
    return trained_toy[0].ema.model


def make_planner(model, normalizer, **settings):
    settings.setdefault("horizon", HORIZON)
    settings.setdefault("seed", 0)
    return Planner(model, normalizer, PlannerConfig(**settings))


def test_plan_shapes_units_and_exact_start_goal(model, toy_normalizer):
    planner = make_planner(model, toy_normalizer, sampler="ddpm")
    plan = planner.plan(START, goal=GOAL)
    assert plan.observations.shape == (HORIZON, 2) and plan.observations.dtype == np.float32
    assert plan.actions.shape == (HORIZON, 2) and np.array_equal(plan.first_action, plan.actions[0])
    assert np.array_equal(plan.observations[0], START) and np.array_equal(plan.observations[-1], GOAL)
    assert plan.denoising_steps == 10 and plan.plan_time_ms > 0 and not plan.warm_started
    # in robot units, near the true line (the model was trained on such lines)
    assert np.abs(plan.observations - straight_line(START, GOAL, HORIZON)[0]).mean() < 0.5
    assert (planner.observation_dim, planner.action_dim, planner.horizon) == (2, 2, HORIZON)


def test_partial_goal_waypoints_and_action_constraints_are_exact(model, toy_normalizer):
    planner = make_planner(model, toy_normalizer, sampler="ddim", denoising_steps=4)
    constraints = [Constraint(3, (1,), (0.75,)), Constraint(2, (0,), (0.1,), part="action")]
    plan = planner.plan(START, goal=GOAL, goal_dims=(0,), constraints=constraints)
    assert plan.observations[-1, 0] == GOAL[0]
    assert plan.observations[3, 1] == np.float32(0.75) and plan.actions[2, 0] == np.float32(0.1)
    assert plan.denoising_steps == 4
    assert planner.plan(START, goal=GOAL[:1], goal_dims=(0,)).observations[-1, 0] == GOAL[0]


def test_same_seed_same_plan_and_longer_horizons_work(model, toy_normalizer):
    first = make_planner(model, toy_normalizer).plan(START, goal=GOAL)
    second = make_planner(model, toy_normalizer).plan(START, goal=GOAL)
    assert np.array_equal(first.observations, second.observations)
    long = make_planner(model, toy_normalizer, horizon=2 * HORIZON).plan(START, goal=GOAL)
    assert long.observations.shape == (2 * HORIZON, 2) and np.array_equal(long.observations[-1], GOAL)


def test_warm_start_renoises_the_shifted_plan_and_uses_fewer_steps(model, toy_normalizer):
    for sampler, steps in (("ddpm", None), ("ddim", 6)):
        planner = make_planner(model, toy_normalizer, sampler=sampler, denoising_steps=steps,
                               warm_start=True, warm_start_steps=3)
        cold = planner.plan(START, goal=GOAL)
        moved = cold.observations[1]
        warm = planner.plan(moved, goal=GOAL, executed_steps=1)
        assert not cold.warm_started and warm.warm_started
        assert warm.denoising_steps < cold.denoising_steps
        assert np.array_equal(warm.observations[0], moved) and np.array_equal(warm.observations[-1], GOAL)
        # still a good plan: close to the straight line from where the robot now is
        assert np.abs(warm.observations - straight_line(moved, GOAL, HORIZON)[0]).mean() < 0.5
        planner.reset()
        assert not planner.plan(moved, goal=GOAL, executed_steps=1).warm_started
        assert not planner.plan(moved, goal=GOAL, executed_steps=HORIZON).warm_started


def test_guides_steer_the_plan(model, toy_normalizer):
    planner = make_planner(model, toy_normalizer, sampler="ddpm", guide_scale=3.0, n_guide_steps=2)
    free = planner.plan(START).observations
    planner = make_planner(model, toy_normalizer, sampler="ddpm", guide_scale=3.0, n_guide_steps=2)
    lowered = planner.plan(START, guides=[CostGuide(lambda x, t: x[:, -1, ACT_DIM])]).observations
    assert lowered[-1, 0] < free[-1, 0]
    assert np.array_equal(lowered[0], START)


@pytest.mark.parametrize("observation, goal, message", [
    (np.zeros(3), None, r"observation must have shape \(2,\)"),
    (np.array([0.0, np.nan]), None, "observation contains NaN"),
    (np.zeros(2), np.array([np.inf, 0.0]), "goal contains NaN or inf"),
    (np.zeros(2), np.zeros(5), r"goal must have shape \(2,\)")])
def test_bad_observation_or_goal_gives_clear_error(model, toy_normalizer, observation, goal, message):
    with pytest.raises(ValueError, match=message):
        make_planner(model, toy_normalizer).plan(observation, goal=goal)


def test_bad_plan_arguments_give_clear_errors(model, toy_normalizer):
    planner = make_planner(model, toy_normalizer, warm_start=True)
    with pytest.raises(ValueError, match="Constraint objects"):
        planner.plan(START, constraints=[(3, (0,), (1.0,))])
    with pytest.raises(ValueError, match="executed_steps"):
        planner.plan(START, executed_steps=-1)


@pytest.mark.parametrize("settings, message", [
    (dict(sampler="euler"), "sampler"), (dict(denoising_steps=0), "denoising_steps"),
    (dict(warm_start_steps=0), "warm_start_steps"), (dict(eta=-1.0), "eta"),
    (dict(guide_scale=-1.0), "guide scale")])
def test_planner_config_validation(settings, message):
    with pytest.raises(ValueError, match=message):
        PlannerConfig(**settings)


@pytest.mark.parametrize("settings, message", [
    (dict(sampler="ddpm", denoising_steps=5), "use sampler='ddim'"),
    (dict(denoising_steps=11), "exceeds"), (dict(warm_start=True, warm_start_steps=11), "exceeds"),
    (dict(horizon=7), "multiple of 2"), (dict(horizon=None), "horizon is required")])
def test_planner_rejects_settings_the_model_cannot_do(toy_normalizer, settings, message):
    with pytest.raises(ValueError, match=message):
        make_planner(tiny_diffusion(), toy_normalizer, **settings)


def test_a_plan_can_be_shorter_or_longer_than_the_configured_horizon(model, toy_normalizer):
    """One convolutional model, any length its down-sampling divides; start and goal stay exact,
    and a warm start from a plan of another length is cut or padded to the new one."""
    planner = make_planner(model, toy_normalizer, sampler="ddim", denoising_steps=4, warm_start=True,
                           warm_start_steps=4)
    first = planner.plan(START, goal=GOAL)
    for horizon in (4, 2 * HORIZON):
        plan = planner.plan(first.observations[1], goal=GOAL, executed_steps=1, horizon=horizon)
        assert plan.observations.shape == (horizon, 2) and plan.warm_started
        assert np.array_equal(plan.observations[0], first.observations[1])
        assert np.array_equal(plan.observations[-1], GOAL)
    assert planner.plan(START, goal=GOAL).observations.shape == (HORIZON, 2)  # the default again
    with pytest.raises(ValueError, match="multiple of 2"):
        planner.plan(START, goal=GOAL, horizon=5)
