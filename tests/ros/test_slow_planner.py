"""A planner slower than the control loop still drives smoothly: with 200 ms added to every plan
(`planning_delay`), the U-Maze goal is still reached and `cmd_accel` keeps the control rate, because
the control loop tracks the newest plan at the index for the elapsed time while the next is computed."""
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus

from diffuser_core.scenario import load_scenario, resolve_config

from .closed_loop_client import GOAL, running_umaze

PLANNING_DELAY_S = 0.2


def control_rate_hz() -> float:
    planner = next(spec for spec in load_scenario(resolve_config("maze2d_umaze")) if spec.name == "diffuser_planner")
    return planner.parameters["control_rate"]


@pytest.fixture(scope="module")
def slow_system(fresh_ros_domain):
    # plans older than 0.5 s would be replaced (max_plan_age 1.0): several slow replans per goal either way
    with running_umaze(f"planning_delay:={PLANNING_DELAY_S}", "max_plan_age:=1.0") as running:
        yield running


def test_a_200_ms_planner_reaches_the_goal_and_commands_keep_the_control_rate(slow_system):
    client, bringup = slow_system
    feedback = []
    handle = client.send(GOAL, timeout=30.0, feedback=feedback.append)
    accepted_at = time.monotonic()
    first_command = len(client.commands)
    response = client.wait(handle.get_result_async(), 40)
    elapsed = time.monotonic() - accepted_at
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.message
    # Every plan took at least the added delay (it is measured, not assumed).
    plan_times = [f.feedback.plan_time_ms for f in feedback if f.feedback.replans]
    assert plan_times and min(plan_times) >= PLANNING_DELAY_S * 1e3
    assert response.result.replans >= 3, f"only {response.result.replans} replans: the test needs several"
    stamps = np.array([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in client.commands[first_command:]])
    rate = control_rate_hz()
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    gaps = np.diff(stamps)
    print(f"goal reached in {elapsed:.2f} s; {len(stamps)} commands at {achieved:.1f} Hz (requested {rate:.0f} Hz), "
          f"gap p99 {np.percentile(gaps, 99) * 1e3:.1f} ms, max {gaps.max() * 1e3:.1f} ms; "
          f"plan times {sorted(set(round(t) for t in plan_times))} ms")
    # The loop keeps its period between replans: the typical gap is one control period, and 95 % of
    # gaps stay far below one plan's duration (commands do not wait for the planner). A rare stall
    # of the whole process on a loaded 2-core machine (seen once: 560 ms) lowers the count-based
    # rate, which must still be well above what waiting for plans would give (< 5 Hz here).
    assert np.median(gaps) <= 1.5 / rate, f"median command gap {np.median(gaps) * 1e3:.1f} ms"
    assert np.percentile(gaps, 95) < PLANNING_DELAY_S / 4, f"p95 command gap {np.percentile(gaps, 95):.3f} s"
    assert achieved >= 0.6 * rate, f"commands at {achieved:.1f} Hz, requested {rate} Hz"
    assert not bringup.failed()
