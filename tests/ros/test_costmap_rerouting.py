"""Over real rclpy: a costmap that blocks the corridor the Medium planner is following makes it
reroute around the block and reach the goal without entering it (no retraining); a costmap that
cannot be a map is refused with a reason and planning goes on."""
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from diffuser_core.tasks.maze2d.grid import MazeGrid
from diffuser_ros.conversions import occupancy_grid_to_map, occupancy_map_to_grid

from .closed_loop_client import running_scenario

START, GOAL, BLOCKED = (2.0, 2.0), (6.0, 6.0), (3, 4)  # the shortest way from START runs through BLOCKED
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope="module")
def medium(fresh_ros_domain):
    with running_scenario("maze2d_medium", START) as running:
        yield running


def blocked_costmap(stamp) -> OccupancyGrid:
    """The Medium maze's walls plus BLOCKED, as the simulator would publish them."""
    grid = MazeGrid.of_maze("medium").with_walls((BLOCKED,))
    return occupancy_map_to_grid(grid.occupancy_map(), Header(stamp=stamp, frame_id="map"))


def plans_through(paths, cell) -> bool:
    """Whether any of the planned paths crosses `cell`."""
    return any(cell in {tuple(c) for c in MazeGrid.cells_at(np.array([(p.pose.position.x, p.pose.position.y)
                                                                       for p in path.poses])).tolist()}
               for path in list(paths) if path.poses)


def cells_driven(client, since: float) -> set:
    """Maze cells of every odom position from sim time `since` on."""
    xy = [(m.pose.pose.position.x, m.pose.pose.position.y) for m in list(client.states)
          if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= since]
    return {tuple(cell) for cell in MazeGrid.cells_at(np.array(xy)).tolist()}


def test_a_costmap_blocking_the_followed_corridor_makes_the_robot_reroute(medium):
    client, bringup = medium
    publisher = client.node.create_publisher(OccupancyGrid, "costmap", LATCHED)
    plans_before = len(client.paths)
    handle = client.send(GOAL, timeout=60.0)
    deadline = time.monotonic() + 20  # plans to the route's points are shorter than the route: wait for one through it
    while not plans_through(client.paths[plans_before:], BLOCKED) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert plans_through(client.paths[plans_before:], BLOCKED), "no plan ran through the cell: the test proves nothing"
    blocked_at = client.sim_time()
    publisher.publish(blocked_costmap(client.node.get_clock().now().to_msg()))
    response = client.wait(handle.get_result_async(), 70)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    assert BLOCKED not in cells_driven(client, blocked_at), "the robot drove into the blocked cell"
    assert not bringup.failed()


def test_a_costmap_that_is_not_a_map_is_refused_and_planning_goes_on(medium):
    client, bringup = medium
    publisher = client.node.create_publisher(OccupancyGrid, "costmap", LATCHED)
    broken = blocked_costmap(client.node.get_clock().now().to_msg())
    broken.info.width += 1  # the data no longer fills the grid
    publisher.publish(broken)
    time.sleep(0.5)
    handle = client.send((4.0, 6.0), timeout=30.0)  # two cells up the corridor it stands in
    response = client.wait(handle.get_result_async(), 40)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    assert not bringup.failed()


def test_an_occupancy_grid_round_trips_and_a_rotated_one_is_refused():
    occupancy = MazeGrid.of_maze("medium").with_walls((BLOCKED,)).occupancy_map()
    message = occupancy_map_to_grid(occupancy, Header(frame_id="map"))
    back = occupancy_grid_to_map(message)
    assert np.array_equal(back.occupied, occupancy.occupied) and back.origin == occupancy.origin
    message.info.origin.orientation.z, message.info.origin.orientation.w = 0.7071, 0.7071
    with pytest.raises(ValueError, match="rotated"):
        occupancy_grid_to_map(message)
