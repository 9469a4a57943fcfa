"""diffuser_planner's safety behaviour over real rclpy, with a tiny untrained point-mass checkpoint:
bad parameters and checkpoints are refused with the reason, bad state never reaches the command,
a goal without state is aborted, a planner fault aborts only the goal, commands stay finite."""
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus

from diffuser_ros.planner_node import DiffuserPlannerNode
from diffuser_ros.send_goal import make_goal

from .planner_harness import Harness, overrides, stream_state, streaming_state, write_tiny_checkpoint


@pytest.fixture
def harness(ros_context, tiny_checkpoint):
    harness = Harness(ros_context, tiny_checkpoint)
    yield harness
    harness.close()


@pytest.mark.parametrize("name, value, reason", [
    ("sampler", "euler", "sampler='euler' is not one of"),
    ("horizon", 7, "horizon"),  # the tiny U-Net halves time once: H must be even
    ("replan_rate", -1.0, r"replan_rate must be in \[0.001, 1000.0\]"),
    ("device", "tpu", "device='tpu'"),
    ("robot", "quadruped", "robot='quadruped'"),
    ("choose_by", "vibes", "choose_by='vibes' is not one of"),
    ("choose_by", "density", "choose_by and choice_model go together"),
])
def test_bad_parameters_are_refused_with_their_name(ros_context, tiny_checkpoint, name, value, reason):
    with pytest.raises(ValueError, match=reason):
        DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(tiny_checkpoint, **{name: value}))


def test_missing_corrupt_and_mismatched_checkpoints_are_refused(ros_context, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(tmp_path / "none.safetensors"))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(ValueError, match="corrupted or not safetensors"):
        DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(corrupt))
    arm = write_tiny_checkpoint(tmp_path / "arm.safetensors", observation_dim=39, action_dim=8)
    with pytest.raises(ValueError, match="39-D observations but robot 'point_mass' has 4-D state"):
        DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(arm))


def test_models_of_the_data_size_plans_and_choose_among_samples_when_named(ros_context, tiny_checkpoint, tmp_path):
    """steps_to_go sizes the loop's plans, choose_by / choice_model / plan_candidates choose among samples;
    a missing file is refused with its parameter's name."""
    from diffuser_core.checkpoint import save_steps_to_go
    from diffuser_core.model.steps_to_go import StepsToGoConfig, fit_steps_to_go
    from diffuser_core.model.visit_density import VisitDensity, save_visit_density
    from diffuser_core.planning.horizon import LearnedHorizon

    states = np.random.default_rng(0).uniform(0.5, 3.5, (400, 4))
    visits = save_visit_density(tmp_path / "visits.safetensors", VisitDensity.fit(states, (0, 1), 0.1))
    tiny = StepsToGoConfig(input_dims=(0, 1), max_gap=20, hidden=8, layers=1, frequencies=0, steps=5, batch_size=16)
    steps_to_go = save_steps_to_go(tmp_path / "steps.safetensors", fit_steps_to_go([states[:200], states[200:]], tiny))
    node = DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(
        tiny_checkpoint, steps_to_go=str(steps_to_go), plan_candidates=3, choose_by="density", choice_model=str(visits)))
    try:
        assert node.controller.choice.candidates == 3 and isinstance(node.controller.sizing, LearnedHorizon)
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="steps_to_go.*not found"):
        DiffuserPlannerNode(context=ros_context, parameter_overrides=overrides(
            tiny_checkpoint, steps_to_go=str(tmp_path / "none.safetensors")))


def test_bad_parameter_exits_2_with_a_message_and_no_traceback(tiny_checkpoint):
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.planner_node", "--ros-args", "-p", "autostart:=true",
                             "-p", f"checkpoint:={tiny_checkpoint}", "-p", "sampler:=euler"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "sampler='euler'" in result.stderr and "Traceback" not in result.stderr


def test_goals_in_walls_with_nan_or_in_another_frame_are_rejected(harness):
    assert not harness.send((2.0, 1.0)).accepted  # the U-Maze's inner wall
    assert not harness.send((math.nan, 1.0)).accepted
    assert not harness.send((40.0, 1.0)).accepted  # outside the maze
    wrong_frame = make_goal(1.0, 1.0, "odom", 0.5, 0.0)
    assert not harness.wait(harness.client.send_goal_async(wrong_frame)).accepted


def test_non_finite_state_never_reaches_the_command(harness):
    handle = harness.send((1.0, 1.0))
    assert handle.accepted
    stream_state(harness, (3.0, 1.0), 0.5)
    before = len(harness.commands)
    harness.publish_state(math.nan, 1.0)
    harness.publish_state(3.0, math.inf)
    stream_state(harness, (3.0, 1.0), 0.3)
    # Under load the executor may lag: give the good state up to 3 s to produce new commands.
    stream_state(harness, (3.0, 1.0), 3.0, stop=lambda: len(harness.commands) > before + 5)
    commands = np.array([[c.accel.linear.x, c.accel.linear.y] for c in harness.commands])
    assert len(commands) > before and np.all(np.isfinite(commands)) and np.all(np.abs(commands) <= 1.0)
    assert np.all(np.isfinite(harness.planner.state))
    harness.wait(handle.cancel_goal_async())


def test_goal_without_state_is_aborted_after_the_grace_period_with_zero_command(harness):
    handle = harness.send((1.0, 1.0))
    assert handle.accepted
    response = harness.wait(handle.get_result_async(), 10)
    assert response.status == GoalStatus.STATUS_ABORTED and "no valid state" in response.result.message
    last = harness.commands[-1].accel.linear
    assert (last.x, last.y) == (0.0, 0.0)


def test_planner_fault_aborts_the_goal_and_the_next_goal_runs(harness):
    original = harness.planner.planner.plan

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (injected)")

    harness.planner.planner.plan = broken
    handle = harness.send((1.0, 1.0))
    with streaming_state(harness, (3.0, 1.0), 10.0):
        response = harness.wait(handle.get_result_async(), 10)
        assert response.status == GoalStatus.STATUS_ABORTED
        assert "planner error: CUDA out of memory (injected)" in response.result.message
        harness.planner.planner.plan = original
        second = harness.send((1.0, 1.0))
        assert second.accepted
        deadline = time.monotonic() + 10
        while harness.planner.session.replans == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert harness.planner.session.replans > 0 and harness.planner.session.active
        harness.wait(second.cancel_goal_async())


def test_diagnostics_report_the_measured_plan_timings(harness):
    from diagnostic_msgs.msg import DiagnosticArray

    received = []
    harness.node.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
    handle = harness.send((1.0, 1.0))
    with streaming_state(harness, (3.0, 3.0), 10.0):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                dict((kv.key, kv.value) for kv in m.status[0].values)["plans"] not in ("0",) for m in received):
            time.sleep(0.05)
        harness.wait(handle.cancel_goal_async())
    status = [m.status[0] for m in received if dict((kv.key, kv.value) for kv in m.status[0].values)["plans"] != "0"][-1]
    values = {kv.key: kv.value for kv in status.values}
    stats = harness.planner.stats
    assert int(values["plans"]) <= stats.plans
    latencies = list(stats.latencies_ms)[: int(values["plans"])]
    assert float(values["plan_latency_median_ms"]) == pytest.approx(np.median(latencies), abs=0.01)
    assert float(values["replan_rate_requested_hz"]) == 20.0 and values["device"] == "cpu"
    assert values["checkpoint"].endswith("tiny.safetensors") and float(values["state_age_s"]) < 0.5
    assert 0 < float(values["replan_rate_achieved_hz"]) <= 20.0


def test_without_a_map_any_finite_goal_in_the_frame_is_accepted(ros_context, tiny_checkpoint):
    harness = Harness(ros_context, tiny_checkpoint, maze="")
    try:
        handle = harness.send((2.0, 1.0))  # inside the U-Maze's wall, but there is no map now
        assert handle.accepted
        harness.wait(handle.cancel_goal_async())
        assert not harness.send((math.nan, 1.0)).accepted
    finally:
        harness.close()
