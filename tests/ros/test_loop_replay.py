"""The node runs the evaluation's loop: every planning and control tick the planner node made over real
rclpy (its inputs, clock readings and plans recorded) is replayed through the loop the offline
evaluation builds (point_mass_controller), and each decision comes out the same: whether and toward
what it planned, and every command and goal outcome; with and without a costmap. Ticks are counted,
never timed, so the machine's speed does not matter."""
import threading
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from diffuser_core.planning.receding import GoalRun
from diffuser_core.tasks.maze2d.grid import MazeGrid
from diffuser_core.tasks.maze2d.point_mass import point_mass_controller
from diffuser_ros.conversions import occupancy_map_to_grid
from diffuser_ros.planner_parameters import check_parameters

from .planner_harness import Harness

START, GOAL, OBSTACLE = (3.0, 1.0), (1.0, 1.0), (1, 2)  # the U-Maze corridor cell next to the goal
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Recording:
    """Stands in for the node's controller: every call goes to it under one lock (so ticks of the two
    threads do not interleave) and is written down with the clock readings and plans it made."""

    def __init__(self, controller):
        self.controller, self.lock, self.calls = controller, threading.Lock(), []
        self.clock, self.readings, self.plans = controller.clock, [], []
        controller.clock = self.read_clock
        planner, plan = controller.planner, controller.planner.plan
        planner.plan = lambda *args, **kwargs: self.plans.append((kwargs, plan(*args, **kwargs))) or self.plans[-1][1]

    def read_clock(self):
        self.readings.append(self.clock())
        return self.readings[-1]

    def record(self, kind, run, *inputs):
        with self.lock:
            readings, plans = len(self.readings), len(self.plans)
            output = getattr(self.controller, kind)(run, *inputs) if kind != "use_map" else self.controller.use_map(run)
            self.calls.append((kind, run, inputs, output, self.readings[readings:], self.plans[plans:]))
            return output

    def plan_tick(self, run, state, state_time):
        return self.record("plan_tick", run, state, state_time)

    def control(self, run, state, state_time):
        return self.record("control", run, state, state_time)

    def use_map(self, occupancy):
        return self.record("use_map", occupancy)

    def __getattr__(self, name):
        return getattr(self.controller, name)


class ScriptedPlanner:
    """Gives back the node's plans in order and writes down what it was asked."""

    def __init__(self, planner, results):
        self.planner, self.results, self.asked = planner, list(results), []

    def plan(self, state, **kwargs):
        self.asked.append(kwargs)
        return self.results.pop(0)

    def reset(self):
        pass

    def __getattr__(self, name):
        return getattr(self.planner, name)


def replay(recording: Recording, node) -> list:
    """The recorded calls again, through the evaluation's loop with the node's settings: their mismatches."""
    _, _, loop, avoidance = check_parameters(node.p)
    readings = [reading for call in recording.calls for reading in call[4]]
    planner = ScriptedPlanner(node.planner, [result for call in recording.calls for _, result in call[5]])
    controller = point_mass_controller(planner, loop, lambda: readings.pop(0), node.p["maze"], node.p["command_limit"],
                                       avoidance)
    runs, mismatches = {}, []
    for index, (kind, run, inputs, output, _, plans) in enumerate(recording.calls):
        if kind == "use_map":
            controller.use_map(run)
            continue
        mine = None if run is None else runs.setdefault(id(run), GoalRun(run.goal, run.tolerance, run.timeout,
                                                                         run.started))
        asked = len(planner.asked)
        again = getattr(controller, kind)(mine, *inputs)
        if kind == "plan_tick":
            same = (again is None) == (output is None) and [planner_arguments(k) for k in planner.asked[asked:]] == [
                planner_arguments(k) for k, _ in plans]
        else:
            same = (again.outcome, again.message) == (output.outcome, output.message) and (
                (again.command is None and output.command is None) or np.array_equal(again.command, output.command))
            if again.outcome and mine is not None:
                mine.finish(again.outcome, again.message)
        if not same:
            mismatches.append((index, kind, output, again))
    return mismatches


def planner_arguments(kwargs: dict) -> tuple:
    """What a plan request asked for, comparably: target, its dims, warm-start shift, horizon, map arguments."""
    goal = kwargs.get("goal")
    return (None if goal is None else tuple(np.round(goal, 9)), kwargs.get("goal_dims"), kwargs.get("executed_steps"),
            kwargs.get("horizon"), kwargs.get("candidates"), len(kwargs.get("guides", ())))


def drive(harness, recording, costmap=None, seconds=30.0):
    """Send the goal and feed states that walk from START to the goal; with `costmap`, publish it once a
    few plans were made. The goal's result."""
    handle = harness.send(GOAL)
    assert handle.accepted
    result, publisher = handle.get_result_async(), None
    path = np.linspace(START, GOAL, 150)
    deadline, step = time.monotonic() + seconds, 0
    while not result.done() and time.monotonic() < deadline:
        x, y = path[min(step // 2, len(path) - 1)]
        harness.publish_state(x, y, -0.5, 0.0)
        step += 1
        if costmap is not None and publisher is None and len(recording.plans) >= 3:
            publisher = harness.node.create_publisher(OccupancyGrid, "costmap", LATCHED)
            publisher.publish(costmap)
        time.sleep(0.01)
    return harness.wait(result, 5)


WHOLE_MAP = {"whole_map": True, "route_reach": 1.0, "route_horizon": 8, "route_steps_per_m": 4.0, "route_retries": 1}


@pytest.mark.parametrize("with_costmap, map_settings", [(False, {}), (True, {}), (True, WHOLE_MAP)],
                         ids=["no costmap", "costmap", "the whole map"])
def test_the_evaluations_loop_makes_every_decision_the_node_made(ros_context, tiny_checkpoint, with_costmap,
                                                                 map_settings):
    harness = Harness(ros_context, tiny_checkpoint, candidates=3, **map_settings)
    try:
        recording = Recording(harness.planner.controller)
        harness.planner.controller = recording
        costmap = None
        if with_costmap:
            grid = MazeGrid.of_maze("umaze").with_walls((OBSTACLE,))
            costmap = occupancy_map_to_grid(grid.occupancy_map(), Header(frame_id="map"))
        response = drive(harness, recording, costmap)
        assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
        time.sleep(0.1)  # a few ticks holding the goal
        with recording.lock:
            harness.planner.controller = recording.controller
        kinds = [call[0] for call in recording.calls]
        assert kinds.count("plan_tick") >= 5 and kinds.count("control") >= 20 and len(recording.plans) >= 3
        assert any(call[0] == "control" and call[3].outcome == "succeeded" for call in recording.calls)
        if with_costmap:
            assert "use_map" in kinds and recording.controller.surroundings.obstacle_cells > 0
            assert recording.controller.surroundings.settings.whole_map == bool(map_settings)
        if map_settings:  # plans to the route's points, sized by the route (and made again when they enter a wall)
            assert any(kwargs.get("goal_dims") == (0, 1) for kwargs, _ in recording.plans)
            assert any(kwargs.get("candidates") == 3 for kwargs, _ in recording.plans)  # planned among the obstacle
        assert replay(recording, harness.planner) == []
    finally:
        harness.close()
