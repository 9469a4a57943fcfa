"""Low-level tracking of a Diffuser plan by the point mass (reference scripts/plan_maze2d.py).

The plan is a sequence of states (x, y, vx, vy). At step t the next waypoint is the plan's state
t + 1 (after the plan ends: its last state with zero velocity) and the force is
    a = (wp_xy - s_xy) + (wp_v - s_v), clipped to [-1, 1].
"""
import numpy as np

POSITION_DIM = 2  # the first two state entries are xy, the next two the velocity
POSITION_DIMS = (0, 1)  # the point mass's position columns, for the replanning policy
VELOCITY_DIMS = (2, 3)
# The keep-out shield's braking model: under a full force the mass decelerates at 26-36 m/s^2
# (measured from 1-5 m/s); the shield counts on less than half of that, and on a command reacting
# 50 ms late (a control period plus the state's age over ROS).
BRAKING_DECELERATION = 12.0
SHIELD_REACTION = 0.05


def next_waypoint(plan_observations, t: int) -> np.ndarray:
    """The plan's state at t + 1, or its last state with zero velocity once t + 1 is past it."""
    plan = _checked_plan(plan_observations)
    if not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"t must be a non-negative int step index, got {t!r}")
    if t < len(plan) - 1:
        return plan[t + 1].copy()
    waypoint = plan[-1].copy()
    waypoint[POSITION_DIM:] = 0.0
    return waypoint


def waypoint_tracking_action(state, plan_observations, t: int) -> np.ndarray:
    """Force that tracks the plan at step t: (wp_xy - s_xy) + (wp_v - s_v), clipped to [-1, 1]."""
    plan = _checked_plan(plan_observations)
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (plan.shape[1],):
        raise ValueError(
            f"state must have shape ({plan.shape[1]},) like a plan row, got {state.shape}")
    if not np.all(np.isfinite(state)):
        raise ValueError(f"state must be finite, got {state.tolist()}")
    error = next_waypoint(plan, t) - state
    return np.clip(error[:POSITION_DIM] + error[POSITION_DIM:2 * POSITION_DIM], -1.0, 1.0)


def shielded(shield, state, command) -> np.ndarray:
    """`command` through a keep-out shield (diffuser_core.shield) for the mass at `state`; unchanged
    without one."""
    if shield is None:
        return command
    state = np.asarray(state, dtype=np.float64)
    return shield.filter(state[list(POSITION_DIMS)], state[list(VELOCITY_DIMS)], command)


def _checked_plan(plan_observations) -> np.ndarray:
    plan = np.asarray(plan_observations, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[0] < 1 or plan.shape[1] < 2 * POSITION_DIM:
        raise ValueError(f"plan must be (H >= 1, >= 4) states (x, y, vx, vy), got {plan.shape}")
    if not np.all(np.isfinite(plan)):
        raise ValueError("plan contains non-finite values")
    return plan
