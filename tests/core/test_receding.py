"""The receding-horizon loop's decisions, one tick at a time, with a scripted planner and robot:
when it plans and toward what, and which command each control tick sends (hold, stale, success,
timeout, no plan, too old, settle, track, guarded by a map)."""
from types import SimpleNamespace

import numpy as np
import pytest

from diffuser_core.planning.choice import PlanChoice
from diffuser_core.planning.receding import GoalRun, LoopSettings, RecedingController

GOAL = np.array([5.0, 0.0, 0.0, 0.0])


class LinePlanner:
    """Plans a straight line from the state to the goal (or waypoint) in `horizon` steps; records calls."""

    horizon, horizon_multiple, normalizer, action_dim = 20, 4, None, 0

    def __init__(self):
        self.calls, self.resets = [], 0

    def reset(self):
        self.resets += 1

    def plan(self, state, goal=None, goal_dims=None, executed_steps=0, horizon=None, **arguments):
        steps = horizon or self.horizon
        end = state if goal is None else goal
        observations = np.linspace(state, end, steps)
        self.calls.append(SimpleNamespace(state=state, goal=goal, goal_dims=goal_dims, executed=executed_steps,
                                          horizon=horizon, arguments=arguments))
        return SimpleNamespace(observations=observations, actions=np.zeros((steps, 2)), plan_time_ms=1.0)


class Corridor:
    """A map seen by the loop: aims at a waypoint 1 m ahead (half as far on each retry) while the goal is
    farther; pushes commands toward -y; a plan reaching past x = `wall` enters an obstacle."""

    def __init__(self, aim_ahead=True, retries=0, wall=np.inf):
        self.aim_ahead, self.retries, self.wall = aim_ahead, retries, wall

    def aim(self, state, goal, current=None, attempt=0):
        if not self.aim_ahead or abs(goal[0] - state[0]) <= 1.0:
            return None
        waypoint = goal.copy()
        waypoint[0] = state[0] + 1.0 / 2 ** attempt
        return waypoint, (0, 1), 8

    def clear(self, plan_observations):
        return bool(np.all(plan_observations[:, 0] < self.wall))

    def planning_arguments(self, goal, planner):
        return {"candidates": 3}

    def guard(self, state, command):
        return command + np.array([0.0, -0.25])


class Mass:
    command_dim, position_dims = 2, (0, 1)

    def __init__(self):
        self.maps = []

    def distance(self, state, goal):
        return float(np.hypot(*(state[:2] - goal[:2])))

    def track(self, state, plan, step):
        waypoint = plan[min(step + 1, len(plan) - 1)]
        return self.safe((waypoint[:2] - state[:2]) * 10)

    def hold(self, state, goal):
        return self.safe(goal[:2] - state[:2])

    def safe(self, command):
        return np.clip(command, -1.0, 1.0)

    def surroundings(self, occupancy, settings):
        self.maps.append((occupancy, settings))
        return Corridor(aim_ahead=occupancy == "corridor")


class Clock:
    time = 0.0

    def __call__(self):
        return self.time


def loop(**settings):
    clock, planner, robot = Clock(), LinePlanner(), Mass()
    controller = RecedingController(planner, robot, LoopSettings(**{"shrink_horizon": False, **settings}), clock)
    return controller, planner, robot, clock


def state(x, y=0.0):
    return np.array([x, y, 0.0, 0.0])


def test_the_first_tick_plans_from_the_state_to_the_goal_and_the_robot_tracks_it():
    controller, planner, robot, clock = loop()
    run = GoalRun(GOAL, tolerance=0.5)
    assert controller.control(run, state(0.0), 0.0).command.tolist() == [0.0, 0.0]  # no plan yet
    result = controller.plan_tick(run, state(0.0), 0.0)
    assert result is not None and run.replans == 1 and run.status == "tracking the plan"
    assert np.array_equal(planner.calls[0].goal, GOAL) and planner.calls[0].goal_dims is None
    assert planner.resets == 1 and run.plan.start_time == clock.time
    clock.time = 0.05
    decision = controller.control(run, state(0.0), 0.05)
    assert decision.outcome == "" and decision.command[0] == pytest.approx(1.0)  # toward the plan's step 6
    controller.plan_tick(run, state(1.0), 0.05)  # every tick with replan_deviation 0
    assert planner.calls[1].executed == 5 and run.replans == 2 and planner.resets == 1


def test_a_goal_without_fresh_state_is_not_planned_stops_the_robot_and_is_aborted_after_the_grace():
    controller, planner, _, clock = loop(state_timeout=0.5, stale_state_grace=2.0)
    run = GoalRun(GOAL, tolerance=0.5)
    clock.time = 1.0
    assert controller.plan_tick(run, state(0.0), 0.2) is None and not planner.calls
    decision = controller.control(run, state(0.0), 0.2)
    assert decision.command.tolist() == [0.0, 0.0] and not decision.outcome
    assert run.status.startswith("no valid state")
    clock.time = 2.5
    assert controller.control(run, state(0.0), 0.2).outcome == "aborted"
    assert controller.control(run, None, -np.inf).outcome == "aborted"  # no state at all


def test_a_reached_goal_succeeds_once_and_is_then_held_and_no_longer_planned():
    controller, planner, _, clock = loop()
    run = GoalRun(GOAL, tolerance=0.5)
    assert controller.plan_tick(run, state(4.8), 0.0) is None and not planner.calls  # arrived: nothing to plan
    decision = controller.control(run, state(4.8), 0.0)
    assert decision.outcome == "succeeded" and decision.command[0] == pytest.approx(0.2)
    run.finish(decision.outcome, decision.message)
    assert controller.plan_tick(run, state(4.0), 0.0) is None
    held = controller.control(run, state(4.0), 0.0)
    assert not held.outcome and held.command[0] == pytest.approx(1.0)  # held, even when pushed away
    clock.time = 1.0
    assert controller.control(run, state(4.0), 0.0).command.tolist() == [0.0, 0.0]  # stale: stop


def test_without_hold_at_goal_the_robot_tracks_its_plan_through_the_goal():
    controller, _, _, _ = loop(hold_at_goal=False)
    run = GoalRun(GOAL, tolerance=0.5)
    assert controller.plan_tick(run, state(4.8), 0.0) is not None
    assert not controller.control(run, state(4.8), 0.0).outcome


def test_a_goal_times_out():
    controller, _, _, clock = loop()
    run = GoalRun(GOAL, tolerance=0.5, timeout=2.0, started=0.0)
    controller.plan_tick(run, state(0.0), 0.0)
    clock.time = 2.01
    decision = controller.control(run, state(0.0), 2.0)
    assert decision.outcome == "aborted" and "timeout" in decision.message and not decision.command.any()


def test_a_plan_too_old_to_track_stops_the_robot_unless_it_settles_onto_the_goal():
    controller, _, _, clock = loop(max_plan_age=1.0, settle_distance=1.0)
    far, near = GoalRun(GOAL, tolerance=0.5), GoalRun(GOAL, tolerance=0.5)
    controller.plan_tick(far, state(0.0), 0.0)
    controller.plan_tick(near, state(4.2), 0.0)
    clock.time = 1.5
    assert controller.control(far, state(0.5), 1.5).command.tolist() == [0.0, 0.0]
    settling = controller.control(near, state(4.2), 1.5).command
    assert settling[0] == pytest.approx(0.8)  # the hold command toward the goal


def test_a_kept_plan_is_replaced_when_a_map_comes_and_plans_aim_at_its_waypoints_with_its_arguments():
    controller, planner, robot, clock = loop(replan_deviation=0.5, max_plan_age=10.0)
    run = GoalRun(GOAL, tolerance=0.5)
    controller.plan_tick(run, state(0.0), 0.0)
    assert controller.plan_tick(run, state(0.1), 0.1) is None  # on the plan: kept
    controller.use_map("corridor")
    assert robot.maps[-1][0] == "corridor"
    assert controller.plan_tick(run, state(0.1), 0.1) is not None  # the map forces a replan
    call = planner.calls[-1]
    assert call.goal[0] == pytest.approx(1.1) and call.goal_dims == (0, 1) and call.horizon == 8
    assert call.arguments == {"candidates": 3}
    clock.time = 0.15
    assert controller.control(run, state(0.1), 0.15).command[1] == pytest.approx(-0.25)  # guarded


def test_guides_join_the_maps_arguments_and_goal_inpainting_can_be_left_to_them():
    clock, planner, robot = Clock(), LinePlanner(), Mass()
    guide = object()
    controller = RecedingController(planner, robot, LoopSettings(inpaint_goal=False), clock, guides=[guide])
    controller.use_map("room")
    controller.plan_tick(GoalRun(GOAL, tolerance=0.5), state(0.0), 0.0)
    assert planner.calls[0].goal is None and planner.calls[0].arguments == {"candidates": 3, "guides": [guide]}


def test_a_choice_among_sampled_plans_joins_every_plan_where_the_map_makes_none():
    clock, planner, robot = Clock(), LinePlanner(), Mass()
    rank = lambda observations: np.zeros(len(observations))  # noqa: E731
    controller = RecedingController(planner, robot, LoopSettings(), clock, choice=PlanChoice(5, rank))
    controller.plan_tick(GoalRun(GOAL, tolerance=0.5), state(0.0), 0.0)
    assert planner.calls[0].arguments == {"candidates": 5, "rank": rank}
    controller.use_map("room")  # this map samples 3 candidates of its own
    controller.plan_tick(GoalRun(GOAL, tolerance=0.5), state(0.0), 0.0)
    assert planner.calls[-1].arguments == {"candidates": 3}
    with pytest.raises(ValueError, match="candidates >= 1"):
        PlanChoice(0, rank)


def test_new_settings_take_effect_at_the_next_tick_and_a_new_goal_resets_the_planner():
    controller, planner, _, _ = loop(replan_deviation=0.5, max_plan_age=10.0)
    run = GoalRun(GOAL, tolerance=0.5)
    controller.plan_tick(run, state(0.0), 0.0)
    controller.update(LoopSettings(replan_deviation=0.0, shrink_horizon=False))
    assert controller.plan_tick(run, state(0.1), 0.1) is not None and planner.resets == 1
    controller.plan_tick(GoalRun(GOAL, tolerance=0.5), state(0.1), 0.1)
    assert planner.resets == 2


@pytest.mark.parametrize("changes", [dict(replan_rate=0.0), dict(goal_tolerance=-1.0), dict(hold_at_goal=1),
                                     dict(state_timeout=float("inf"))])
def test_bad_loop_settings_are_refused(changes):
    with pytest.raises(ValueError):
        LoopSettings(**changes)


def test_a_horizon_the_map_sizes_is_rounded_to_a_length_the_planner_takes_and_capped_at_its_own():
    controller, _, _, _ = loop()
    assert controller.horizon(9, None, None, state(0.0), 0.0, GOAL) == 12  # the U-Net's multiple of 4
    assert controller.horizon(90, (0, 1), None, state(0.0), 0.0, GOAL) == LinePlanner.horizon
    assert controller.horizon(None, (0, 1), None, state(0.0), 0.0, GOAL) is None  # a waypoint: the planner's own


def test_a_plan_that_enters_an_obstacle_is_made_again_afresh_toward_a_nearer_point():
    controller, planner, robot, _ = loop()
    robot.surroundings = lambda occupancy, settings: Corridor(retries=2, wall=0.8)
    controller.use_map("corridor")
    run = GoalRun(GOAL, tolerance=0.5)
    result = controller.plan_tick(run, state(0.0), 0.0)
    assert [call.goal[0] for call in planner.calls] == [1.0, 0.5]  # 1 m ahead entered x > 0.8; then 0.5 m
    assert planner.resets == 2 and run.replans == 1 and result.observations[-1][0] == pytest.approx(0.5)
    robot.surroundings = lambda occupancy, settings: Corridor(retries=1, wall=0.1)
    controller.use_map("corridor")
    controller.plan_tick(GoalRun(GOAL, tolerance=0.5), state(0.0), 0.0)
    assert len(planner.calls) == 4  # out of retries: the last plan is kept
