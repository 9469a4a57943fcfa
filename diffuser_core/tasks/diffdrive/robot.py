"""The differential-drive robot as a robot of the receding loop: its body and limits, the pursuit rule
that turns a plan (or a goal) into (v, w), its hold, and its reading of a map.

State (6-D): (x, y, vx, vy, cos_yaw, sin_yaw), the velocity in the world frame. Command (2-D): (v, w),
the forward speed (m/s) and the yaw rate (rad/s). The pursuit rule toward a point at distance d and
heading error alpha (wrapped to [-pi, pi]):
    v = clip(K_V d cos(alpha), 0, v_max)   (0 once |alpha| >= pi/2: turn in place, never reverse)
    w = clip(K_W alpha, -w_max, w_max)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from diffuser_core.planar.avoidance import AvoidanceSettings
from diffuser_core.planar.costmap import OccupancyMap
from diffuser_core.planar.shield import Braking
from diffuser_core.planar.surroundings import PlanarBody, PlanarSurroundings, aligned_static
from diffuser_core.planning.hierarchy import interpolated_segments
from diffuser_core.planning.receding import LoopSettings, RecedingController

from .layouts import layout_grid

STATE_DIM = 6
COMMAND_DIM = 2
POSITION_DIMS = (0, 1)
VELOCITY_DIMS = (2, 3)
HEADING_DIMS = (4, 5)  # cos_yaw, sin_yaw
GOAL_DIMS = (0, 1, 2, 3)  # a goal fixes the position and a zero velocity; the heading is free
RADIUS = 0.1  # m: the body, a cylinder like the point mass's ball, so the maze cells and costmap margins fit
V_MAX = 0.5  # m/s
W_MAX = 2.0  # rad/s
K_V = 3.0  # 1/s: forward speed per metre to the pursued point (1 / the lookahead's 0.3 s)
K_W = 4.0  # 1/s: yaw rate per radian of heading error
LOOKAHEAD_STEPS = 3  # plan steps ahead of the tracked step the robot pursues (0.3 s at plan_dt 0.1 s)
TRACK_STOP_DISTANCE = 0.03  # m: this close to the pursued point the robot stands still (no spinning on the spot)
HOLD_DISTANCE = 0.05  # m: this close to the goal, holding it is standing still
# The map's braking model: the speed servo reaches 5 m/s^2 under a full command; count on less, and on a
# command reacting a control period (and the state's age) late. The keep-out shield is off for (v, w).
BRAKING = Braking(deceleration=2.0, reaction=0.1)


def wrap_angle(angle: float) -> float:
    """The angle wrapped into [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def checked_state(state) -> np.ndarray:
    """A finite (x, y, vx, vy, cos_yaw, sin_yaw) vector, or a ValueError saying what is wrong."""
    vector = np.asarray(state, dtype=np.float64)
    if vector.shape != (STATE_DIM,):
        raise ValueError(f"state must be (x, y, vx, vy, cos_yaw, sin_yaw), got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"state must be finite, got {vector.tolist()}")
    return vector


def heading(state: np.ndarray) -> float:
    """The yaw (rad) of a state's (cos_yaw, sin_yaw)."""
    return math.atan2(state[HEADING_DIMS[1]], state[HEADING_DIMS[0]])


def pursuit(state, target_xy, v_max: float = V_MAX, w_max: float = W_MAX, stop_distance: float = 0.0
            ) -> np.ndarray:
    """(v, w) toward the point `target_xy`: the pursuit rule of the module docstring; zero within
    `stop_distance` of it."""
    state = checked_state(state)
    dx, dy = float(target_xy[0]) - state[0], float(target_xy[1]) - state[1]
    distance = math.hypot(dx, dy)
    if distance <= stop_distance:
        return np.zeros(COMMAND_DIM)
    alpha = wrap_angle(math.atan2(dy, dx) - heading(state))
    speed = min(max(K_V * distance * math.cos(alpha), 0.0), v_max)
    return np.array([speed, min(max(K_W * alpha, -w_max), w_max)])


def pursued_point(plan_observations, step: int, lookahead: int = LOOKAHEAD_STEPS) -> np.ndarray:
    """The plan's position at `step` + `lookahead` (its last position once that is past its end)."""
    plan = np.asarray(plan_observations, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[0] < 1 or plan.shape[1] < 2:
        raise ValueError(f"plan must be (H >= 1, >= 2) states with the position first, got {plan.shape}")
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    point = plan[min(step + lookahead, len(plan) - 1), list(POSITION_DIMS)]
    if not np.all(np.isfinite(point)):
        raise ValueError("plan contains non-finite positions")
    return point


def checked_limit(value: float, name: str) -> float:
    """A positive finite speed limit, or a ValueError naming it."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class DiffDrive:
    """The differential-drive robot for the receding loop (diffuser_core.planning.receding.Robot): state
    (x, y, vx, vy, cos_yaw, sin_yaw), commands (v, w) within (v_max, w_max); `layout` names the walls its
    model was trained among (they are no obstacles on a costmap), "" for none."""

    command_dim = COMMAND_DIM
    position_dims = POSITION_DIMS
    goal_dims = GOAL_DIMS

    def __init__(self, layout: str = "", v_max: float = V_MAX, w_max: float = W_MAX,
                 lookahead: int = LOOKAHEAD_STEPS):
        self.grid = layout_grid(layout) if layout else None
        self.v_max, self.w_max = checked_limit(v_max, "v_max"), checked_limit(w_max, "w_max")
        if not isinstance(lookahead, int) or lookahead < 0:
            raise ValueError(f"lookahead must be a non-negative number of plan steps, got {lookahead!r}")
        self.lookahead = lookahead

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Planar distance to the goal position."""
        return float(math.hypot(state[0] - goal[0], state[1] - goal[1]))

    def track(self, state: np.ndarray, plan_observations: np.ndarray, step: int) -> np.ndarray:
        """Pursue the plan's position `lookahead` steps past `step` (its last once past its end)."""
        point = pursued_point(plan_observations, max(0, int(step)), self.lookahead)
        return self.safe(pursuit(state, point, self.v_max, self.w_max, TRACK_STOP_DISTANCE))

    def hold(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Pursue the goal's position; stand still within HOLD_DISTANCE of it."""
        goal_xy = np.asarray(goal, dtype=np.float64)[list(POSITION_DIMS)]
        return self.safe(pursuit(state, goal_xy, self.v_max, self.w_max, HOLD_DISTANCE))

    def safe(self, command: np.ndarray) -> np.ndarray:
        """(v, w) clipped to the limits; anything non-finite or misshapen becomes zero."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (COMMAND_DIM,) or not np.all(np.isfinite(command)):
            return np.zeros(COMMAND_DIM)
        return np.clip(command, [-self.v_max, -self.w_max], [self.v_max, self.w_max])

    def walls(self, like: OccupancyMap) -> OccupancyMap | None:
        """The layout's walls on `like`'s grid, or None without a layout or when the grids differ."""
        if self.grid is None:
            return None
        return aligned_static(self.grid.occupancy_map(like.resolution), like)

    def surroundings(self, occupancy: OccupancyMap, settings: AvoidanceSettings | None) -> PlanarSurroundings:
        """How the robot plans among `occupancy` (as the point mass does), without the keep-out shield:
        the shield filters a force, not a (v, w) command."""
        settings = dataclasses.replace(settings or AvoidanceSettings(), costmap_shield=False)
        body = PlanarBody(POSITION_DIMS, VELOCITY_DIMS, BRAKING, self.v_max)
        return PlanarSurroundings(occupancy, self.walls(occupancy), settings, body)

    @staticmethod
    def segments(kind: str, plan_dt: float):
        """How a hierarchical plan's subgoals are joined: "linear", or "hermite" (curves through their
        positions with their velocities as tangents; the heading linearly)."""
        return interpolated_segments(kind, POSITION_DIMS, VELOCITY_DIMS, plan_dt)


def diffdrive_controller(planner, settings: LoopSettings, clock: Callable[[], float], layout: str = "",
                         v_max: float = V_MAX, w_max: float = W_MAX, avoidance: AvoidanceSettings | None = None,
                         guides: Sequence = (), goal_dims: Sequence[int] = GOAL_DIMS, sizing=None,
                         choice=None) -> RecedingController:
    """The receding loop of the differential-drive robot (a goal fixes `goal_dims` of the state; `sizing`
    and `choice`: models of the data sizing plans and choosing among samples, as the planner node's)."""
    return RecedingController(planner, DiffDrive(layout, v_max, w_max), settings, clock,
                              avoidance or AvoidanceSettings(), guides, goal_dims, sizing=sizing, choice=choice)
