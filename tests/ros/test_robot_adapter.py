"""A robot described by parameters: state fields read from Odometry and JointState, commands written to
Twist, AccelStamped and JointTrajectory, goal poses turned into goal states with the dims they fix."""
import math

import numpy as np
import pytest
from geometry_msgs.msg import AccelStamped, PoseStamped, Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from diffuser_ros.adapters import RobotAdapter
from diffuser_ros.robot_messages import CommandMapping, MappingError, StateMapping, message_class

DIFF_DRIVE_STATE = ("x", "y", "velocity_x", "velocity_y", "cos_yaw", "sin_yaw")


def odometry(x=1.0, y=2.0, yaw=0.0, forward=0.0, turn=0.0) -> Odometry:
    message = Odometry()
    message.pose.pose.position.x, message.pose.pose.position.y = x, y
    message.pose.pose.orientation.z, message.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    message.twist.twist.linear.x, message.twist.twist.angular.z = forward, turn
    return message


def goal_pose(x, y, frame="map", yaw=0.0) -> PoseStamped:
    message = PoseStamped(header=Header(frame_id=frame))
    message.pose.position.x, message.pose.position.y = x, y
    message.pose.orientation.z, message.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return message


def diff_drive(**overrides) -> RobotAdapter:
    arguments = dict(robot="diff_drive", state=StateMapping("odometry", DIFF_DRIVE_STATE),
                     command=CommandMapping("twist", ("linear_x", "angular_z")),
                     goal_fields=("x", "y", "velocity_x", "velocity_y"), layout="room", limits=(0.5, 2.0))
    return RobotAdapter(**{**arguments, **overrides})


def test_odometry_twist_in_the_body_frame_becomes_the_world_velocity():
    state = StateMapping("odometry", DIFF_DRIVE_STATE).read(odometry(yaw=math.pi / 2, forward=0.4))
    assert np.allclose(state, [1.0, 2.0, 0.0, 0.4, 0.0, 1.0], atol=1e-9)


def test_joint_state_fields_are_read_by_joint_name_whatever_the_order():
    message = JointState(name=["b", "a"], position=[2.0, 1.0], velocity=[0.2, 0.1])
    assert StateMapping("joint_state", ("position:a", "position:b", "velocity:a")).read(message).tolist() == [1.0, 2.0, 0.1]
    with pytest.raises(ValueError, match="joint 'c'"):
        StateMapping("joint_state", ("position:c",)).read(message)


def test_a_non_finite_state_names_its_field():
    with pytest.raises(ValueError, match="velocity_x"):
        StateMapping("odometry", DIFF_DRIVE_STATE).read(odometry(forward=float("nan")))


@pytest.mark.parametrize("kind, fields", [("twist", ("linear_x", "angular_z")), ("accel", ("linear_x", "linear_y")),
                                          ("joint_trajectory", ("j1", "j2"))])
def test_each_command_kind_carries_the_vector_and_reads_it_back(kind, fields):
    mapping = CommandMapping(kind, fields)
    message = mapping.message(np.array([0.3, -0.7]), Header(frame_id="map"), dt=0.1)
    assert isinstance(message, message_class(mapping.type_name))
    assert np.allclose(mapping.read(message), [0.3, -0.7])
    assert {"twist": Twist, "accel": AccelStamped, "joint_trajectory": JointTrajectory}[kind] is type(message)
    with pytest.raises(ValueError, match="finite"):
        mapping.message(np.array([0.3, float("inf")]))


def test_unknown_kinds_and_fields_are_refused_with_the_known_ones():
    with pytest.raises(MappingError, match="odometry"):
        StateMapping("pose", ("x",))
    with pytest.raises(MappingError, match="heading"):
        StateMapping("odometry", ("x", "heading"))
    with pytest.raises(MappingError, match="linear_x"):
        CommandMapping("twist", ("speed",))


def test_a_diff_drive_goal_fixes_position_and_rest_and_leaves_the_heading_free():
    adapter = diff_drive()
    assert adapter.goal_dims == (0, 1, 2, 3)
    check = adapter.check_goal(goal_pose(3.0, 1.0, yaw=1.0))
    assert check.ok and check.goal.tolist()[:4] == [3.0, 1.0, 0.0, 0.0]
    assert not adapter.check_goal(goal_pose(2.0, 3.0)).ok  # a wall cell of the room
    assert "frame" in adapter.check_goal(goal_pose(3.0, 1.0, frame="odom")).reason


def test_a_goal_that_fixes_the_heading_sets_it_from_the_pose():
    adapter = diff_drive(goal_fields=("x", "y", "cos_yaw", "sin_yaw"))
    goal = adapter.check_goal(goal_pose(3.0, 1.0, yaw=math.pi / 2)).goal
    assert adapter.goal_dims == (0, 1, 4, 5) and np.allclose(goal[[4, 5]], [0.0, 1.0])


def test_the_point_mass_goal_fixes_every_dim_and_the_limits_follow_the_parameters():
    adapter = RobotAdapter("point_mass", StateMapping("odometry", ("x", "y", "velocity_x", "velocity_y")),
                           CommandMapping("accel", ("linear_x", "linear_y")), ("x", "y", "velocity_x", "velocity_y"),
                           layout="umaze", limits=(1.0,))
    assert adapter.goal_dims is None
    assert adapter.robot.safe(np.array([3.0, -3.0])).tolist() == [1.0, -1.0]
    adapter.set_limits((0.5,))
    assert adapter.robot.safe(np.array([3.0, -3.0])).tolist() == [0.5, -0.5]


def test_diff_drive_limits_are_per_command_field_and_change_live():
    adapter = diff_drive()
    assert adapter.robot.safe(np.array([9.0, -9.0])).tolist() == [0.5, -2.0]
    adapter.set_limits((0.2, 1.0))
    assert adapter.robot.safe(np.array([9.0, -9.0])).tolist() == [0.2, -1.0]


def test_mappings_that_do_not_fit_the_robot_are_refused():
    with pytest.raises(MappingError, match="command_fields"):
        diff_drive(command=CommandMapping("twist", ("linear_x",)), limits=(0.5,))
    with pytest.raises(MappingError, match="goal_fields"):
        diff_drive(goal_fields=("x", "z"))
    with pytest.raises(MappingError, match="limits"):
        diff_drive(limits=(0.5, 2.0, 1.0))
