"""Parameters through the standard parameter services, as `ros2 param` uses them: every parameter
is described (ranges where numeric), live ones take effect at once on the active planner, invalid
or fixed ones are refused with a reason."""
import pytest
from rcl_interfaces.msg import Parameter as ParameterMessage, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, SetParameters

from diffuser_ros.planner_parameters import PARAMETER_INFO, PARAMETERS

from .planner_harness import Harness


@pytest.fixture
def harness(ros_context, tiny_checkpoint):
    harness = Harness(ros_context, tiny_checkpoint)
    yield harness
    harness.close()


def call(harness, service_type, name, request):
    client = harness.node.create_client(service_type, f"/diffuser_planner/{name}")
    assert client.wait_for_service(timeout_sec=10)
    return harness.wait(client.call_async(request))


def set_parameter(harness, name, value):
    """(successful, reason) of setting one parameter through diffuser_planner/set_parameters."""
    kinds = {float: (ParameterType.PARAMETER_DOUBLE, "double_value"), int: (ParameterType.PARAMETER_INTEGER, "integer_value"),
             str: (ParameterType.PARAMETER_STRING, "string_value"), bool: (ParameterType.PARAMETER_BOOL, "bool_value")}
    kind, field = kinds[type(value)]
    message = ParameterMessage(name=name, value=ParameterValue(type=kind, **{field: value}))
    result = call(harness, SetParameters, "set_parameters", SetParameters.Request(parameters=[message])).results[0]
    return result.successful, result.reason


def test_every_parameter_is_described_with_ranges_where_numeric(harness):
    response = call(harness, DescribeParameters, "describe_parameters",
                    DescribeParameters.Request(names=list(PARAMETERS)))
    described = {d.name: d for d in response.descriptors}
    assert set(described) == set(PARAMETERS)
    for name, descriptor in described.items():
        assert descriptor.description, f"{name} has no description"
        info = PARAMETER_INFO[name]
        if info.minimum is not None:
            ranges = descriptor.floating_point_range or descriptor.integer_range
            assert ranges and ranges[0].from_value == pytest.approx(info.minimum), name
    assert described["replan_rate"].floating_point_range[0].from_value > 0
    assert described["robot"].read_only


def test_live_parameters_take_effect_on_the_active_planner(harness):
    assert harness.planner.active
    assert set_parameter(harness, "replan_rate", 5.0) == (True, "")
    assert set_parameter(harness, "goal_tolerance", 0.25)[0]
    assert set_parameter(harness, "replan_deviation", 0.4)[0]
    assert harness.planner.p["replan_rate"] == 5.0 and harness.planner.p["goal_tolerance"] == 0.25
    assert harness.planner.controller.settings.replan_deviation == 0.4


def test_invalid_and_fixed_values_are_refused_with_a_reason(harness):
    ok, reason = set_parameter(harness, "replan_rate", -1.0)
    assert not ok and harness.planner.p["replan_rate"] == 20.0
    ok, reason = set_parameter(harness, "sampler", "euler")
    assert not ok and "cannot change while the node is configured" in reason
    ok, reason = set_parameter(harness, "checkpoint", "other.safetensors")
    assert not ok and "checkpoint" in reason
    ok, reason = set_parameter(harness, "robot", "kuka_arm")
    assert not ok
    assert harness.planner.get_parameter("sampler").value == "ddim"


def test_simulator_parameters_are_described_and_fixed_after_start(ros_context):
    from rclpy.parameter import Parameter

    from diffuser_ros.kuka_sim_node import KukaSim
    from diffuser_ros.maze2d_sim_node import Maze2DSim

    for node in (Maze2DSim(context=ros_context, parameter_overrides=[Parameter("real_time_factor", value=2.0)]),
                 KukaSim(context=ros_context)):
        names = list(node._parameters)  # every declared parameter, use_sim_time included
        described = [node.describe_parameter(name) for name in names if name != "use_sim_time"]
        assert described and all(d.description and d.read_only for d in described)
        assert not node.set_parameters([Parameter("real_time_factor", value=3.0)])[0].successful
        node.destroy_node()
