"""The differential-drive robot without ROS: the mujoco world drives and turns as commanded, within its
limits, and stops at walls; the pursuit rule turns in place toward a point behind and drives to one
ahead; the expert reaches random goals around the room's walls; the rollouts have D4RL's layout."""
import itertools
import math

import numpy as np
import pytest

from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planar.costmap import OccupancyMap
from diffuser_core.planar.route_planner import RoutePlanner
from diffuser_core.planning.receding import GoalRun, LoopSettings
from diffuser_core.tasks.diffdrive.expert import ExpertTour, RouteExpert, next_goal
from diffuser_core.tasks.diffdrive.layouts import ROOM, free_cells, layout_grid, layout_names
from diffuser_core.tasks.diffdrive.robot import DiffDrive, diffdrive_controller, pursuit, wrap_angle
from diffuser_core.tasks.diffdrive.rollouts import expert_rollouts
from diffuser_core.tasks.diffdrive.world import DiffDriveWorld

START = (3.0, 3.0)  # the room's centre cell


def state_at(x, y, yaw, vx=0.0, vy=0.0):
    return np.array([x, y, vx, vy, math.cos(yaw), math.sin(yaw)])


def run(world, command, seconds):
    for _ in range(round(seconds / world.dt)):
        world.step(command)
    return world.state()


@pytest.fixture
def world():
    return DiffDriveWorld("room", seed=0)


# ------------------------------------------------------------------------------------- layouts
def test_the_room_is_a_walled_7_by_7_with_every_free_cell_reachable():
    grid = layout_grid("room")
    assert grid.walls.shape == (7, 7) and grid.walls[0].all() and grid.walls[:, 0].all()
    cells = free_cells(grid)
    assert len(cells) == 25 - sum(row[1:-1].count("#") for row in ROOM[1:-1]) and len(cells) == 22
    reached, frontier = {cells[0]}, [cells[0]]
    while frontier:
        i, j = frontier.pop()
        for cell in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if cell in cells and cell not in reached:
                reached.add(cell)
                frontier.append(cell)
    assert reached == set(cells)


def test_layouts_by_name_include_the_maze2d_mazes_and_refuse_others():
    assert {"room", "umaze", "medium", "large"} <= set(layout_names())
    assert np.array_equal(layout_grid("medium").walls, layout_grid("medium").walls)
    with pytest.raises(ValueError, match="unknown layout 'mars'"):
        layout_grid("mars")


# --------------------------------------------------------------------------------------- world
def test_the_world_drives_forward_along_its_heading_with_finite_acceleration(world):
    world.reset(start_xy=START, yaw=math.pi / 2)
    world.step((0.5, 0.0))
    assert 0 < world.body_twist()[0] < 0.1  # a dynamic body: one step does not reach the speed
    state = run(world, (0.5, 0.0), 1.0)
    assert world.body_twist()[0] == pytest.approx(0.5, abs=0.01)
    assert state[:4] == pytest.approx([3.0, 3.0 + 0.45, 0.0, 0.5], abs=0.02)
    assert state[4:] == pytest.approx([0.0, 1.0], abs=1e-6) and world.state().shape == (6,)


def test_the_world_turns_in_place_as_commanded(world):
    world.reset(start_xy=START, yaw=0.0)
    run(world, (0.0, 1.0), 1.0)
    x, y, yaw = world.pose()
    assert (x, y) == pytest.approx(START, abs=1e-6)
    assert yaw == pytest.approx(0.9, abs=0.02)  # 1 rad/s for 1 s, less the 0.1 s it takes to spin up
    assert world.body_twist()[1] == pytest.approx(1.0, abs=0.01)


def test_commands_are_clipped_to_the_limits_and_non_finite_ones_are_zero(world):
    world.reset(start_xy=START, yaw=0.0)
    run(world, (3.0, -9.0), 1.0)
    assert np.array_equal(world.command, [0.5, -2.0])
    assert world.body_twist() == pytest.approx((0.5, -2.0), abs=0.02)
    world.step((math.nan, 1.0))
    assert np.array_equal(world.command, [0.0, 0.0])
    with pytest.raises(ValueError, match="two numbers"):
        world.step((1.0, 2.0, 3.0))


def test_the_robot_cannot_pass_a_wall(world):
    # the room's border wall below row 1: its face is at x = 0.3, so the body (radius 0.1) stops at 0.4
    world.reset(start_xy=(1.0, 1.0), yaw=math.pi)
    xs = [run(world, (0.5, 0.0), 0.01)[0] for _ in range(1000)]
    assert min(xs) > 0.4 - 0.01 and xs[-1] == pytest.approx(0.4, abs=0.001)  # soft contact: a dent, then out
    assert world.in_contact() and world.state()[1] == pytest.approx(1.0, abs=1e-3)


def test_reset_draws_a_free_start_and_refuses_one_in_a_wall(world):
    for seed in range(20):
        state = world.reset(seed=seed)
        assert world.grid.is_free(state[:2]) and np.all(state[2:4] == 0) and not world.in_contact()
    with pytest.raises(ValueError, match="not free"):
        world.reset(start_xy=(0.0, 0.0))


def test_obstacle_cells_are_walls(world):
    blocked = DiffDriveWorld("room", obstacles=[(3, 2)])
    assert blocked.grid.walls[3, 2] and not world.grid.walls[3, 2]
    blocked.reset(start_xy=START, yaw=-math.pi / 2)
    state = run(blocked, (0.5, 0.0), 3.0)
    assert state[1] == pytest.approx(2.3 + 0.1, abs=0.01)  # the obstacle cell's face is at y = 2.3


# ---------------------------------------------------------------------------------- robot rule
def test_track_turns_in_place_toward_a_waypoint_behind():
    robot = DiffDrive("room")
    plan = np.array([state_at(3.0 - 0.1 * k, 3.0, 0.0) for k in range(10)])  # the plan goes backwards (-x)
    v, w = robot.track(state_at(3.0, 3.0, 0.0), plan, 0)
    assert v == 0.0 and abs(w) == pytest.approx(2.0)


def test_track_drives_to_a_waypoint_ahead_and_steers_toward_one_aside():
    robot = DiffDrive("room")
    ahead = np.array([state_at(3.0 + 0.05 * k, 3.0, 0.0) for k in range(10)])
    v, w = robot.track(state_at(3.0, 3.0, 0.0), ahead, 0)
    assert v == pytest.approx(0.45) and w == pytest.approx(0.0)  # K_V * 0.15 m (3 steps ahead)
    left = np.array([state_at(3.0 + 0.05 * k, 3.0 + 0.05 * k, 0.0) for k in range(10)])
    v, w = robot.track(state_at(3.0, 3.0, 0.0), left, 0)
    assert v == pytest.approx(3.0 * math.hypot(0.15, 0.15) * math.cos(math.pi / 4)) and w == pytest.approx(2.0)
    v, w = robot.track(state_at(3.0, 3.0, 0.0), ahead, 100)  # past the plan's end: its last state
    assert v == pytest.approx(0.5)


def test_hold_stands_still_at_the_goal_and_drives_back_onto_it():
    robot = DiffDrive()
    goal = np.array([3.0, 3.0, 0.0, 0.0])
    assert np.array_equal(robot.hold(state_at(3.02, 3.01, 1.0), goal), [0.0, 0.0])
    v, w = robot.hold(state_at(2.8, 3.0, 0.0), goal)
    assert (v, w) == pytest.approx((0.5, 0.0))  # K_V * 0.2 m, at the speed limit


def test_safe_clips_and_zeroes_bad_commands():
    robot = DiffDrive(v_max=0.3, w_max=1.0)
    assert np.array_equal(robot.safe([2.0, -5.0]), [0.3, -1.0])
    assert np.array_equal(robot.safe([-2.0, 0.5]), [-0.3, 0.5])
    for bad in ([math.nan, 0.0], [1.0], [[1.0, 2.0]], [0.0, math.inf]):
        assert np.array_equal(robot.safe(bad), [0.0, 0.0])
    with pytest.raises(ValueError, match="v_max"):
        DiffDrive(v_max=0.0)


def test_robot_conventions_and_pursuit_wrap():
    robot = DiffDrive("room")
    assert (robot.command_dim, robot.position_dims, robot.goal_dims) == (2, (0, 1), (0, 1, 2, 3))
    assert robot.distance(state_at(0.0, 0.0, 1.0), np.array([3.0, 4.0, 0.0, 0.0])) == pytest.approx(5.0)
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    v, w = pursuit(state_at(0.0, 0.0, math.pi - 0.1), (-1.0, -0.1))  # across the +-pi seam: a small left turn
    assert v > 0 and 0 < w < 1.0
    with pytest.raises(ValueError, match="state must be"):
        robot.track(np.zeros(4), np.zeros((3, 6)), 0)


def test_surroundings_are_planar_without_the_shield_and_the_walls_are_known():
    robot = DiffDrive("room")
    grid = layout_grid("room").with_walls([(3, 2)])
    occupancy = grid.occupancy_map(0.1)
    surroundings = robot.surroundings(occupancy, AvoidanceSettings(costmap_shield=True))
    assert surroundings.shield is None and not surroundings.settings.costmap_shield
    assert surroundings.obstacle_cells == 100  # the obstacle cell alone, not the room's walls
    assert robot.walls(OccupancyMap(np.zeros((3, 3), bool), 0.1, (0.0, 0.0))) is None
    command = np.array([0.4, 0.1])
    assert np.array_equal(surroundings.guard(state_at(3.0, 3.0, 0.0), command), command)


def test_the_receding_loop_drives_the_robot_along_a_routed_plan_around_the_walls():
    """The diffdrive controller with the classical route planner (plans at plan_dt 0.1 s), in the world."""
    world = DiffDriveWorld("room")
    state = world.reset(start_xy=(1.0, 2.0), yaw=0.0)
    planner = RoutePlanner(world.grid.occupancy_map(0.1), 6, (0, 1), (2, 3), speed=0.4, acceleration=1.0, dt=0.1,
                           clearance=0.2)
    controller = diffdrive_controller(planner, LoopSettings(plan_dt=0.1, goal_tolerance=0.15, replan_rate=2.0),
                                      lambda: world.time, layout="room", v_max=0.4)
    assert isinstance(controller.robot, DiffDrive) and controller.robot.v_max == 0.4
    run = GoalRun(goal=state_at(5.0, 2.0, 0.0), tolerance=0.15)  # behind the wall cell (4, 2)
    contacts = 0
    for tick in range(400):  # 40 s at 10 Hz
        if tick % 5 == 0:
            controller.plan_tick(run, state, world.time)
        decision = controller.control(run, state, world.time)
        if decision.outcome:
            run.finish(decision.outcome, decision.message)
            break
        for _ in range(10):
            state = world.step(decision.command)
            contacts += world.in_contact()
    assert run.succeeded, run.status
    assert world.time < 25.0 and contacts == 0


def test_segments_join_subgoals_on_the_position_and_velocity_dims():
    subgoals = np.array([state_at(0.0, 0.0, 0.0, 1.0, 0.0), state_at(1.0, 0.0, 0.0, 1.0, 0.0)], dtype=np.float32)
    dense, _, _ = DiffDrive.segments("hermite", 0.1).densify(subgoals, np.zeros((2, 2), np.float32), 10)
    assert dense.shape == (11, 6) and dense[5, 0] == pytest.approx(0.5) and dense[5, 2] == pytest.approx(1.0)


# -------------------------------------------------------------------------------------- expert
def drive_tour(world, goals, seed):
    """The expert's tour in the world at 10 Hz; (tour, simulated seconds, wall contacts)."""
    rng = np.random.default_rng(seed)
    tour = ExpertTour(RouteExpert(world.grid, rng=rng), rng, goals, tolerance=0.2, timeout=60.0)
    state, contacts = world.reset(seed=seed), 0
    for _ in range(goals * 600):  # 60 s per goal at most
        tick = tour.tick(state, world.time)
        if tick.done:
            break
        for _ in range(10):
            state = world.step(tick.command)
            contacts += world.in_contact()
    return tour, world.time, contacts


def test_the_expert_reaches_every_random_goal_in_the_room_around_the_walls(world):
    tour, seconds, contacts = drive_tour(world, 20, seed=1)
    assert tour.done and tour.reached == 20
    assert seconds < 20 * 20.0  # the room's longest route is about 6 m, at up to 0.5 m/s
    assert contacts == 0  # the route keeps off the walls


def test_the_expert_reaches_goals_in_the_medium_maze():
    tour, _, _ = drive_tour(DiffDriveWorld("medium"), 5, seed=2)
    assert tour.done and tour.reached == 5


def test_the_expert_turns_toward_the_route_not_straight_at_a_goal_behind_a_wall():
    grid = layout_grid("room")
    expert = RouteExpert(grid, rng=np.random.default_rng(0), noise=0.0)
    # facing +x at (3, 2), the goal (5, 2) lies straight ahead behind the wall cell (4, 2): the route bends
    # through the gap at (4, 1) or (4, 3)
    state = state_at(3.0, 2.0, 0.0)
    v, w = expert.command(state, (5.0, 2.0))
    assert v >= 0.0 and abs(w) > 0.5  # the route's next point is not straight ahead through the wall
    assert RouteExpert.reached(state_at(5.1, 2.0, 0.0), (5.0, 2.0), 0.2)


def test_the_speed_wanders_between_its_floor_and_the_limit():
    expert = RouteExpert(layout_grid("room"), rng=np.random.default_rng(3))
    fractions = [expert.wander() for _ in range(500)]
    assert 0.4 <= min(fractions) < 0.9 and max(fractions) <= 1.0
    assert max(abs(a - b) for a, b in itertools.pairwise(fractions)) < 0.2  # smooth, not white noise
    assert all(RouteExpert(layout_grid("room"), noise=0.0).wander() == 1.0 for _ in range(3))


def test_next_goal_is_free_and_away_from_the_robot():
    grid, rng = layout_grid("room"), np.random.default_rng(0)
    for _ in range(50):
        goal = next_goal(grid, rng, START)
        assert grid.is_free(goal) and math.dist(goal, START) >= 0.5


def test_tour_refuses_a_negative_goal_count():
    with pytest.raises(ValueError, match="goals"):
        ExpertTour(RouteExpert(layout_grid("room")), np.random.default_rng(), -1)


# ------------------------------------------------------------------------------------ rollouts
def test_rollouts_have_the_d4rl_layout_with_a_timeout_at_each_goals_end(world):
    data = expert_rollouts(world, RouteExpert(world.grid, rng=np.random.default_rng(0)), n_goals=4, seed=0)
    count = len(data["observations"])
    assert data["observations"].shape == (count, 6) and data["actions"].shape == (count, 2)
    assert data["rewards"].shape == data["terminals"].shape == data["timeouts"].shape == (count,)
    assert not data["rewards"].any() and not data["terminals"].any()
    assert data["timeouts"].sum() == 4 and data["timeouts"][-1] and data["infos/reached"].sum() == 4
    assert data["infos/goal"].shape == (count, 2)
    ends = np.flatnonzero(data["timeouts"])
    goals = [data["infos/goal"][end] for end in ends]
    assert all(np.all(data["infos/goal"][start:end + 1] == goal)
               for start, end, goal in zip(np.concatenate([[0], ends[:-1] + 1]), ends, goals, strict=True))
    # sampled at 10 Hz: consecutive positions move at most v_max * 0.1 s
    steps = np.linalg.norm(np.diff(data["observations"][:, :2], axis=0), axis=1)
    assert steps.max() <= 0.05 + 1e-3 and np.abs(data["actions"][:, 0]).max() <= 0.5
    headings = np.linalg.norm(data["observations"][:, 4:], axis=1)
    assert headings == pytest.approx(np.ones(count), abs=1e-5)


def test_rollouts_are_reproducible_and_check_the_rate(world):
    first = expert_rollouts(DiffDriveWorld("room"), RouteExpert(world.grid, rng=np.random.default_rng(0)), 2, seed=5)
    again = expert_rollouts(DiffDriveWorld("room"), RouteExpert(world.grid, rng=np.random.default_rng(0)), 2, seed=5)
    assert np.array_equal(first["observations"], again["observations"])
    with pytest.raises(ValueError, match="must divide"):
        expert_rollouts(world, RouteExpert(world.grid), 1, rate=30.0)
    with pytest.raises(ValueError, match="n_goals"):
        expert_rollouts(world, RouteExpert(world.grid), 0)
