"""The arm's joints from a URDF without a simulator: what the arm planner clips commands to."""
import math

import numpy as np
import pytest

from diffuser_core.tasks.kuka.urdf import URDFError, arm_joint_limits, arm_joints, load_urdf, parse_joints

TWO_JOINTS = """<robot name="two">
  <link name="base"/><link name="a"/><link name="b"/><link name="c"/>
  <joint name="fixed_mount" type="fixed"><parent link="base"/><child link="a"/></joint>
  <joint name="shoulder" type="revolute"><parent link="a"/><child link="b"/>
    <origin xyz="0 0 0.3" rpy="0 0 1.5707963"/><axis xyz="0 0 1"/>
    <limit lower="-1.5" upper="2.0" effort="100" velocity="1.2"/></joint>
  <joint name="wrist" type="continuous"><parent link="b"/><child link="c"/><axis xyz="0 1 0"/></joint>
</robot>"""


def test_joints_come_in_file_order_with_origins_axes_and_limits():
    fixed, shoulder, wrist = parse_joints(TWO_JOINTS)
    assert (fixed.type, shoulder.name, wrist.name) == ("fixed", "shoulder", "wrist")
    assert (shoulder.lower, shoulder.upper, shoulder.effort, shoulder.velocity) == (-1.5, 2.0, 100.0, 1.2)
    np.testing.assert_allclose(shoulder.origin[:3, 3], [0, 0, 0.3])
    np.testing.assert_allclose(shoulder.origin[:3, 0], [0, 1, 0], atol=1e-6)  # yaw of 90 degrees
    assert wrist.axis.tolist() == [0.0, 1.0, 0.0] and wrist.lower == -math.inf and wrist.upper == math.inf


def test_an_arm_is_its_moving_joints_and_the_count_is_checked():
    names, lower, upper = arm_joint_limits(TWO_JOINTS, count=2)
    assert names == ("shoulder", "wrist") and lower[0] == -1.5 and upper[1] == math.inf
    with pytest.raises(URDFError, match="2 moving joints"):
        arm_joints(TWO_JOINTS, 7)


def test_the_simulated_iiwa_matches_what_pybullet_reads():
    from diffuser_core.tasks.kuka.world import KukaBlockWorld

    names, lower, upper = arm_joint_limits()
    with KukaBlockWorld() as world:
        assert names == tuple(world.joint_names)
        np.testing.assert_allclose(lower, world.joint_limits[0])
        np.testing.assert_allclose(upper, world.joint_limits[1])


@pytest.mark.parametrize("source, message", [
    ("<robot><joint type='revolute'/></robot>", "name and a type"),
    ("<robot", "not valid XML"),
    ("<model/>", "not <robot>"),
    ("/no/such/arm.urdf", "no URDF file"),
    ("<robot><joint name='j' type='revolute'><limit lower='1' upper='0'/></joint></robot>", "lower limit"),
    ("<robot><joint name='j' type='revolute'><origin xyz='0 0'/></joint></robot>", "not 3 numbers"),
])
def test_bad_descriptions_are_refused_clearly(source, message):
    with pytest.raises(URDFError, match=message):
        parse_joints(load_urdf(source))
