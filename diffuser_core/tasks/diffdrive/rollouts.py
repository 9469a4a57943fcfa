"""Expert demonstrations without ROS: the expert's tour (the one the diffdrive_expert node runs) drives the
world to random goals one after another, commanding at `rate` Hz while the physics steps at 1 / world.dt;
the states are sampled at the control rate into D4RL's layout (what a recording of diffdrive_sim +
diffdrive_expert gives)."""
from __future__ import annotations

import math

import numpy as np

from .expert import GOAL_TIMEOUT, GOAL_TOLERANCE, ExpertTour, RouteExpert
from .world import DiffDriveWorld


def expert_rollouts(world: DiffDriveWorld, expert: RouteExpert, n_goals: int, rate: float = 10.0, seed=None,
                    tolerance: float = GOAL_TOLERANCE, goal_timeout: float = GOAL_TIMEOUT) -> dict[str, np.ndarray]:
    """Demonstrations of `n_goals` goals from a reset of `world` (seeded by `seed`): observations (N, 6),
    actions (N, 2) (the command held after each observation), rewards and terminals (zeros), timeouts
    (True at each goal's last sample), infos/goal (N, 2) and infos/reached (True at the last sample of a
    goal that was reached, not given up)."""
    if not isinstance(n_goals, (int, np.integer)) or n_goals < 1:
        raise ValueError(f"n_goals must be a positive int, got {n_goals!r}")
    steps_per_command = physics_steps_per_command(world.dt, rate)
    rng = np.random.default_rng(seed)
    state = world.reset(seed=int(rng.integers(2**31)))
    tour = ExpertTour(expert, rng, n_goals, tolerance, goal_timeout)
    rows: dict[str, list] = {"observations": [], "actions": [], "timeouts": [], "infos/goal": [], "infos/reached": []}
    while True:
        tick = tour.tick(state, world.time)
        if tick.ended:
            rows["timeouts"][-1], rows["infos/reached"][-1] = True, tick.ended == "reached"
        if tick.done:
            return as_dataset(rows)
        for name, value in (("observations", state), ("actions", tick.command), ("timeouts", False),
                            ("infos/goal", tour.goal), ("infos/reached", False)):
            rows[name].append(value)
        for _ in range(steps_per_command):
            state = world.step(tick.command)


def physics_steps_per_command(dt: float, rate: float) -> int:
    """Physics steps per control period; ValueError unless `rate` divides the physics rate."""
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {rate!r}")
    steps = round(1.0 / (dt * rate))
    if steps < 1 or abs(steps * dt * rate - 1.0) > 1e-6:
        raise ValueError(f"rate {rate} Hz must divide the physics rate {1.0 / dt:g} Hz")
    return steps


def as_dataset(rows: dict[str, list]) -> dict[str, np.ndarray]:
    """The rows as D4RL-layout arrays (float32 values, bool flags, zero rewards and terminals)."""
    count = len(rows["observations"])
    return {
        "observations": np.asarray(rows["observations"], dtype=np.float32).reshape(count, 6),
        "actions": np.asarray(rows["actions"], dtype=np.float32).reshape(count, 2),
        "rewards": np.zeros(count, dtype=np.float32),
        "terminals": np.zeros(count, dtype=bool),
        "timeouts": np.asarray(rows["timeouts"], dtype=bool),
        "infos/goal": np.asarray(rows["infos/goal"], dtype=np.float32).reshape(count, 2),
        "infos/reached": np.asarray(rows["infos/reached"], dtype=bool),
    }
