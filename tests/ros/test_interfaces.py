"""The package's own rosidl interfaces import and carry the fields of the design contract."""
import importlib

import pytest

try:
    importlib.import_module("diffuser_ros.msg")
except ImportError as error:  # a clear message instead of a collection error
    pytest.fail(f"diffuser_ros interfaces are not built or not on the path ({error}); run scripts/setup.sh")

from diffuser_ros.action import ReachGoal, StackBlocks
from diffuser_ros.msg import Blocks, Plan, Relation


def fields(message_type):
    return set(message_type.get_fields_and_field_types())


def test_messages_have_contract_fields():
    assert fields(Relation) == {"top", "bottom"}
    assert fields(Blocks) == {"header", "names", "poses"}
    assert fields(Plan) == {"header", "horizon", "dim", "data", "denoising_steps", "plan_time_ms"}
    assert Plan.get_fields_and_field_types()["data"] == "sequence<float>"


def test_reach_goal_action_fields():
    assert fields(ReachGoal.Goal) == {"goal", "tolerance", "timeout"}
    assert fields(ReachGoal.Result) == {"success", "final_distance", "replans", "message"}
    assert fields(ReachGoal.Feedback) == {"distance_remaining", "replans", "plan_time_ms", "status"}
    assert ReachGoal.Goal.get_fields_and_field_types()["goal"] == "geometry_msgs/PoseStamped"


def test_stack_blocks_action_fields():
    assert fields(StackBlocks.Goal) == {"task", "relations", "timeout"}
    assert StackBlocks.Goal.get_fields_and_field_types()["relations"] == "sequence<diffuser_ros/Relation>"
    assert fields(StackBlocks.Result) == {"success", "score", "replans", "message"}
    assert fields(StackBlocks.Feedback) == {"satisfied", "total", "plan_time_ms", "status"}


def test_plan_data_round_trips_a_float32_array():
    import numpy as np

    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    message = Plan(horizon=4, dim=3, data=array.ravel().tolist())
    assert np.array_equal(np.asarray(message.data, dtype=np.float32).reshape(4, 3), array)
