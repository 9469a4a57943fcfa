"""The receding-horizon loop of a goal-reaching robot, one tick at a time: the one loop the planner
node drives in real (or simulated) time and the offline evaluation drives in simulated time.

A planning tick decides whether to replan and plans from the newest state to the goal (or to the
waypoint a map's route names); a control tick decides the command: hold a reached goal, stop on
stale state, succeed, time out, stop on a plan too old to track, settle onto the goal, or track the
plan. The robot's tracking rule and its reading of a map are the task's (`Robot`); every time comes
from the caller's clock, so the same inputs give the same decisions online and offline.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from diffuser_core.planning.replanning import ReplanningPolicy, TimedPlan
from diffuser_core.settings import check_settings, setting


@dataclass(frozen=True)
class LoopSettings:
    """How the loop replans and when a goal is reached, stale or over (the planner node's
    parameters of the same names). hold_at_goal: succeed and hold the goal once within its
    tolerance (off: the paper's protocol tracks its plan to the end of the episode);
    inpaint_goal: plans inpaint the goal at their last state (off: guides alone draw them)."""

    replan_rate: float = setting(10.0, "Hz: planning ticks (a replan, or a check of the plan)", 0.001, 1000.0,
                                 live=True)
    replan_deviation: float = setting(0.0, "m: 0 replans at every tick; > 0 keeps a plan the robot tracks this well",
                                      0.0, live=True)
    settle_distance: float = setting(1.0, "m: this close to the goal, a plan that arrives there is kept to its end",
                                     0.0, live=True)
    max_plan_age: float = setting(3.0, "s: an older plan is not tracked (and is replanned at half this age)",
                                  0.001, live=True)
    plan_dt: float = setting(0.01, "s between plan steps (the control period of the training data)", 1e-6, 10.0)
    shrink_horizon: bool = setting(True, "size each replan to the route that remains")
    goal_tolerance: float = setting(0.5, "m: success radius when a goal gives 0", 0.001, live=True)
    state_timeout: float = setting(0.5, "s: older state gives zero commands", 0.001, live=True)
    stale_state_grace: float = setting(2.0, "s: a goal without fresh state for this long is aborted", 0.001,
                                       live=True)
    hold_at_goal: bool = True
    inpaint_goal: bool = True

    def __post_init__(self):
        check_settings(self)
        for name in ("hold_at_goal", "inpaint_goal"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def tick_period(self) -> float:
        """s between planning ticks."""
        return 1.0 / self.replan_rate


class Surroundings(Protocol):
    """A map the loop plans among (diffuser_core.planar gives one for planar robots)."""

    retries: int  # plans made afresh toward nearer targets while a plan enters the map's obstacles

    def aim(self, state: np.ndarray, goal: np.ndarray, current: np.ndarray | None = None, attempt: int = 0
            ) -> tuple[np.ndarray, tuple[int, ...] | None, int | None] | None:
        """(target state, its fixed dims (None: all), plan horizon (None: the loop's)) of the next plan:
        a waypoint instead of the goal, or the goal with a horizon the map sizes; None: the goal.
        `current`: the target of the plan tracked now; `attempt` > 0: a nearer target than before."""

    def clear(self, plan_observations: np.ndarray) -> bool:
        """Whether a plan keeps out of the map's obstacles."""

    def planning_arguments(self, goal: np.ndarray, planner) -> dict:
        """The planner's keyword arguments (guides, candidates, rank) toward `goal`."""

    def guard(self, state: np.ndarray, command: np.ndarray) -> np.ndarray:
        """The command, made safe among the map's obstacles."""


class Robot(Protocol):
    """What the loop needs of a robot (its task supplies it)."""

    command_dim: int
    position_dims: tuple[int, ...]

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Distance from the state to the goal (what the tolerance bounds)."""

    def track(self, state: np.ndarray, plan_observations: np.ndarray, step: int) -> np.ndarray:
        """The command that tracks the plan from its step `step` on."""

    def hold(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The command that holds the robot at the goal."""

    def safe(self, command: np.ndarray) -> np.ndarray:
        """The command within the robot's limits (zero when not finite)."""

    def surroundings(self, occupancy: Any, settings: Any) -> Surroundings | None:
        """How this robot plans among a map (None: the map changes nothing)."""


@dataclass
class GoalRun:
    """One goal being driven to: the goal state, its success radius, its time limit (0: none) and
    when it came; the plan tracked now, the loop's counts, and the outcome once it ends."""

    goal: np.ndarray
    tolerance: float
    timeout: float = 0.0
    started: float = 0.0
    plan: TimedPlan | None = None
    replans: int = 0
    ticks: int = 0
    plan_time_ms: float = 0.0
    distance: float = math.inf
    status: str = "waiting for the first plan"
    outcome: str = ""  # "", succeeded, aborted, canceled, preempted
    message: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return not self.outcome

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"

    def finish(self, outcome: str, message: str) -> bool:
        """End the run (once); whether this call ended it."""
        if not self.active:
            return False
        self.outcome, self.message = outcome, message
        self.done.set()
        return True


@dataclass(frozen=True)
class Command:
    """A control tick's decision: the command to send (None: send nothing), and the outcome and
    message when the goal ends at this tick."""

    command: np.ndarray | None
    outcome: str = ""
    message: str = ""


class RecedingController:
    """Plans and tracks toward goals with one planner, for one robot. `clock()` gives the time
    (the node's, or simulated); `map_settings` is how the robot reads a map (e.g. the planar
    wing's AvoidanceSettings); `guides` are added to every plan's guides; `goal_dims` are the state
    dims a goal fixes (None: the robot's `goal_dims`, or all); `sizing` sizes plans to the goal from
    the state and the goal (planning.horizon.HorizonRule; None: the planner's own horizon); `choice`
    samples several plans and keeps one by a model of the data (planning.choice.PlanChoice) where the
    map does not choose."""

    def __init__(self, planner, robot: Robot, settings: LoopSettings, clock: Callable[[], float],
                 map_settings: Any = None, guides: Sequence = (), goal_dims: Sequence[int] | None = None,
                 sizing=None, choice=None):
        self.planner, self.robot, self.clock, self.choice = planner, robot, clock, choice
        self.goal_dims = tuple(goal_dims) if goal_dims is not None else getattr(robot, "goal_dims", None)
        self.guides, self.sizing = list(guides), sizing
        self.settings, self.map_settings = settings, map_settings
        self.policy = ReplanningPolicy.for_planner(planner, settings, settings.goal_tolerance, robot.position_dims,
                                                   sizing)
        self.occupancy, self.surroundings, self.map_changed = None, None, False
        self.last_run: GoalRun | None = None

    def update(self, settings: LoopSettings | None = None, map_settings: Any = None) -> None:
        """New settings take effect from the next tick (the map is read again under new map settings)."""
        if settings is not None:
            self.settings = settings
            self.policy = ReplanningPolicy.for_planner(self.planner, settings, settings.goal_tolerance,
                                                       self.robot.position_dims, self.sizing)
        if map_settings is not None and map_settings != self.map_settings:
            self.map_settings = map_settings
            if self.occupancy is not None:
                self.surroundings = self.robot.surroundings(self.occupancy, map_settings)

    def use_map(self, occupancy) -> None:
        """Plan among `occupancy` from now on: the next planning tick replans, and commands are
        guarded at once. Raises ValueError for a map the robot cannot read."""
        self.surroundings = self.robot.surroundings(occupancy, self.map_settings)
        self.occupancy, self.map_changed = occupancy, True

    # ------------------------------------------------------------------ planning tick
    def plan_tick(self, run: GoalRun | None, state: np.ndarray | None, state_time: float):
        """Replan for `run` from `state` if the policy asks for it; the PlanResult, or None when no
        plan was made (no goal, stale state, arrived, or the plan is kept)."""
        if run is None or not run.active or not self.fresh(state, state_time):
            return None
        if run is not self.last_run:
            self.planner.reset()
            self.last_run = run
        run.ticks += 1
        if self.settings.hold_at_goal and self.robot.distance(state, run.goal) <= run.tolerance:
            return None  # the control tick ends the goal
        surroundings, previous = self.surroundings, run.plan
        target, dims, map_horizon = self.aim(surroundings, state, run.goal, previous)
        changed, self.map_changed = self.map_changed, False
        if not (changed or self.policy.needs_plan(state, state_time, target, run.tolerance, previous)):
            return None
        spent_ms = 0.0
        for attempt in range(1 + (surroundings.retries if surroundings is not None else 0)):
            if attempt:  # the plan entered the map's obstacles: plan afresh to a nearer point of the route
                target, dims, map_horizon = self.aim(surroundings, state, run.goal, None, attempt)
                self.planner.reset()
            horizon = self.horizon(map_horizon, dims, previous, state, state_time, target)
            result = self.planner.plan(state, goal=target if self.settings.inpaint_goal else None,
                                       goal_dims=dims if dims is not None else self.goal_dims,
                                       executed_steps=self.policy.executed_steps(previous, state_time),
                                       horizon=horizon, **self.planning_arguments(run.goal, surroundings))
            spent_ms += result.plan_time_ms
            if surroundings is None or surroundings.clear(result.observations):
                break
        result.plan_time_ms = spent_ms  # the tick's planning, every attempt included
        if not run.active:
            return None
        start_time = state_time if previous is not None else self.clock()
        run.plan = TimedPlan(result.observations, result.actions, state_time, start_time, target)
        run.replans += 1
        run.plan_time_ms = result.plan_time_ms
        run.status = "tracking the plan"
        return result

    def aim(self, surroundings, state: np.ndarray, goal: np.ndarray, previous: TimedPlan | None, attempt: int = 0):
        """(target, its dims, the map's horizon) of the next plan: the map's aim (a nearer one on a
        later attempt), or the goal."""
        current = previous.target if previous is not None else None
        aimed = surroundings.aim(state, goal, current, attempt) if surroundings is not None else None
        return aimed or (goal, None, None)

    def horizon(self, map_horizon: int | None, dims, previous, state, state_time: float, target) -> int | None:
        """The next plan's length: the map's (rounded up to a length the planner takes, at most its
        horizon); else the planner's own toward a waypoint, and the policy's (sized or shrinking) toward the goal."""
        if map_horizon is not None:
            multiple = self.planner.horizon_multiple
            return int(min(self.planner.horizon, math.ceil(map_horizon / multiple) * multiple))
        return None if dims is not None else self.policy.horizon(previous, state, state_time, target)

    def planning_arguments(self, goal: np.ndarray, surroundings) -> dict:
        """The map's planner arguments toward `goal`, with this controller's guides (and choice, where the
        map makes none) added."""
        arguments = surroundings.planning_arguments(goal, self.planner) if surroundings is not None else {}
        if self.choice is not None and not {"candidates", "rank"} & arguments.keys():
            arguments = {**arguments, **self.choice.planning_arguments()}
        if self.guides:
            arguments = {**arguments, "guides": [*arguments.get("guides", ()), *self.guides]}
        return arguments

    # ------------------------------------------------------------------ control tick
    def control(self, run: GoalRun | None, state: np.ndarray | None, state_time: float) -> Command:
        """The command for `run` at the clock's time, and the goal's outcome if it ends now."""
        now = self.clock()
        fresh = self.fresh(state, state_time, now)
        if run is None or not (run.active or run.succeeded):
            return Command(None)
        if run.succeeded:  # hold the reached goal, or stop when the state is stale
            return Command(self.guard(state, self.robot.hold(state, run.goal)) if fresh else self.zero())
        if not fresh:
            return self.stale(run, state_time, now)
        run.distance = self.robot.distance(state, run.goal)
        if self.settings.hold_at_goal and run.distance <= run.tolerance:
            return Command(self.guard(state, self.robot.hold(state, run.goal)), "succeeded",
                           f"reached goal within {run.tolerance:.2f} m")
        if run.timeout > 0 and now - run.started > run.timeout:
            return Command(self.zero(), "aborted", f"timeout after {run.timeout:.1f} s")
        plan = run.plan
        if plan is None:
            return Command(self.zero())
        if self.policy.too_old(plan, now):  # too old to track: hold the goal when settling onto it, else stop
            settling = self.policy.settling(state, run.goal, run.tolerance, plan)
            return Command(self.guard(state, self.robot.hold(state, run.goal)) if settling else self.zero())
        step = self.policy.tracking_step(plan, now)
        return Command(self.guard(state, self.robot.track(state, plan.observations, step)))

    def stale(self, run: GoalRun, state_time: float, now: float) -> Command:
        """Stop without fresh state; abort the goal once it went without for the grace period."""
        waited = min(now - state_time, now - run.started)
        if not run.status.startswith("state rejected"):
            run.status = "no valid state: holding a zero command"
        if waited > self.settings.stale_state_grace:
            return Command(self.zero(), "aborted", f"no valid state for {waited:.1f} s ({run.status})")
        return Command(self.zero())

    def fresh(self, state, state_time: float, now: float | None = None) -> bool:
        """Whether `state` exists and is at most state_timeout old."""
        now = self.clock() if now is None else now
        return state is not None and now - state_time <= self.settings.state_timeout

    def guard(self, state: np.ndarray, command: np.ndarray) -> np.ndarray:
        """The command within the robot's limits, made safe among the map's obstacles."""
        surroundings = self.surroundings
        if surroundings is not None:
            command = surroundings.guard(state, command)
        return self.robot.safe(command)

    def zero(self) -> np.ndarray:
        return np.zeros(self.robot.command_dim)


class SimulatedClock:
    """An episode's time, set by an offline evaluation at every step; the loop reads it as a node reads its clock."""

    time = 0.0

    def __call__(self) -> float:
        return self.time
