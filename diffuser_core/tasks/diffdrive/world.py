"""The differential-drive robot's world in mujoco: a cylinder (radius 0.1 m) on planar joints (slide x,
slide y, hinge yaw) among the layout's wall boxes, in the maze grid's frame (cell (i, j) at xy (i, j)).

The robot is a dynamic body: at every physics step the wheels' forces are computed from the command
(v, w): the forward speed and the yaw rate follow it with a 0.1 s time constant, and sideways slip
decays in 0.02 s (the wheels' grip). So it accelerates finitely, collides with walls (frictionless
contact: it slides along them) and never passes through one.
"""
from __future__ import annotations

import math

import mujoco
import numpy as np

from diffuser_core.tasks.maze2d.grid import MazeGrid, as_vector

from .layouts import CELL_NOISE, layout_grid, random_free_xy
from .robot import COMMAND_DIM, RADIUS, V_MAX, W_MAX, checked_limit, wrap_angle

TIMESTEP = 0.01  # s per physics step
MASS = 1.0  # kg (a TurtleBot3 Burger weighs about 1 kg)
HALF_HEIGHT = 0.05  # m: the cylinder's half height
YAW_INERTIA = 0.5 * MASS * RADIUS ** 2  # kg m^2: a solid cylinder about its axis
TILT_INERTIA = MASS * (3 * RADIUS ** 2 + (2 * HALF_HEIGHT) ** 2) / 12
SPEED_TIME_CONSTANT = 0.1  # s: forward speed and yaw rate approach the command this fast
GRIP_TIME_CONSTANT = 0.02  # s: sideways slip decays this fast (stable for timesteps up to this)
WALL_HALF_HEIGHT = 0.2


def world_xml(grid: MazeGrid, timestep: float = TIMESTEP) -> str:
    """MJCF of the robot among `grid`'s walls (one box per wall cell)."""
    walls = "\n".join(
        f'    <geom name="wall_{index}" type="box" material="wall" pos="{center[0]} {center[1]} 0" '
        f'size="{half[0]} {half[1]} {WALL_HALF_HEIGHT}"/>'
        for index, (center, half) in enumerate(grid.wall_boxes()))
    return f"""<mujoco model="diffdrive">
  <compiler angle="radian"/>
  <option timestep="{timestep}" gravity="0 0 0" integrator="Euler"/>
  <default>
    <geom contype="1" conaffinity="1" condim="1"/>
    <motor ctrllimited="false" gear="1"/>
  </default>
  <asset>
    <material name="wall" rgba=".7 .5 .3 1"/>
    <material name="body" rgba=".2 .3 .8 1"/>
  </asset>
  <worldbody>
    <geom name="ground" type="plane" size="40 40 0.1" pos="0 0 -0.1" contype="0" conaffinity="0"/>
    <body name="robot" pos="0 0 0">
      <inertial pos="0 0 0" mass="{MASS}" diaginertia="{TILT_INERTIA} {TILT_INERTIA} {YAW_INERTIA}"/>
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <joint name="yaw" type="hinge" axis="0 0 1"/>
      <geom name="chassis" type="cylinder" size="{RADIUS} {HALF_HEIGHT}" material="body"/>
      <site name="nose" type="box" size="0.03 0.02 0.01" pos="{RADIUS - 0.03} 0 {HALF_HEIGHT}"/>
    </body>
{walls}
  </worldbody>
  <actuator>
    <motor name="force_x" joint="x"/>
    <motor name="force_y" joint="y"/>
    <motor name="torque_yaw" joint="yaw"/>
  </actuator>
</mujoco>
"""


class DiffDriveWorld:
    """The robot in the world called `layout` ("room" or a maze2d maze) with the `obstacles` cells
    walled too; commands (v, w) are held over physics steps of `dt` s, clipped to (v_max, w_max)."""

    def __init__(self, layout: str = "room", seed=None, obstacles=(), v_max: float = V_MAX, w_max: float = W_MAX,
                 timestep: float = TIMESTEP):
        if not (isinstance(timestep, (int, float)) and 0 < timestep <= GRIP_TIME_CONSTANT):
            raise ValueError(f"timestep must be in (0, {GRIP_TIME_CONSTANT}] s, got {timestep!r}")
        self.layout = layout
        self.grid = layout_grid(layout).with_walls(obstacles)
        self.v_max, self.w_max = checked_limit(v_max, "v_max"), checked_limit(w_max, "w_max")
        self.model = mujoco.MjModel.from_xml_string(world_xml(self.grid, timestep))
        self.data = mujoco.MjData(self.model)
        self.robot_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "chassis")
        self.rng = np.random.default_rng(seed)
        self.command = np.zeros(COMMAND_DIM)
        self.reset()

    @property
    def dt(self) -> float:
        """s per physics step."""
        return float(self.model.opt.timestep)

    def reset(self, seed=None, start_xy=None, yaw=None) -> np.ndarray:
        """Place the robot at rest at `start_xy` facing `yaw` (else a random free cell's point + U(-0.1, 0.1),
        facing a random yaw); `seed` reseeds the draws. Raises ValueError for a start in a wall."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        xy = self.random_free_xy(self.rng) if start_xy is None else as_vector(start_xy, 2, "start_xy")
        if not self.grid.is_free(xy):
            raise ValueError(f"start_xy {xy.tolist()} is not free: the robot (radius {RADIUS} m) would overlap a wall")
        yaw = self.rng.uniform(-math.pi, math.pi) if yaw is None else float(as_vector(yaw, 1, "yaw")[0])
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = (xy[0], xy[1], yaw)
        self.command = np.zeros(COMMAND_DIM)
        mujoco.mj_forward(self.model, self.data)
        return self.state()

    def step(self, command) -> np.ndarray:
        """One physics step holding (v, w) (clipped to the limits; a non-finite command is zero); the state."""
        self.command = self.limited(command)
        self.data.ctrl[:] = self.wheel_forces(self.command)
        mujoco.mj_step(self.model, self.data)
        return self.state()

    def limited(self, command) -> np.ndarray:
        """(v, w) clipped to the limits, zero when not finite; ValueError when not two numbers."""
        try:
            command = np.asarray(command, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ValueError(f"command must be two numbers (v, w), got {command!r}") from error
        if command.shape != (COMMAND_DIM,):
            raise ValueError(f"command must be two numbers (v, w), got {command.tolist()}")
        if not np.all(np.isfinite(command)):
            return np.zeros(COMMAND_DIM)
        return np.clip(command, [-self.v_max, -self.w_max], [self.v_max, self.w_max])

    def wheel_forces(self, command: np.ndarray) -> np.ndarray:
        """World-frame (force x, force y, torque z) that bring the forward speed and yaw rate to the
        command and remove sideways slip."""
        vx, vy, yaw_rate = self.data.qvel
        cos, sin = math.cos(self.data.qpos[2]), math.sin(self.data.qpos[2])
        forward = MASS * (command[0] - (cos * vx + sin * vy)) / SPEED_TIME_CONSTANT
        sideways = -MASS * (-sin * vx + cos * vy) / GRIP_TIME_CONSTANT
        torque = YAW_INERTIA * (command[1] - yaw_rate) / SPEED_TIME_CONSTANT
        return np.array([cos * forward - sin * sideways, sin * forward + cos * sideways, torque])

    def state(self) -> np.ndarray:
        """(x, y, vx, vy, cos_yaw, sin_yaw), the velocity in the world frame."""
        x, y, yaw = self.data.qpos
        vx, vy, _ = self.data.qvel
        return np.array([x, y, vx, vy, math.cos(yaw), math.sin(yaw)])

    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw), yaw wrapped into [-pi, pi)."""
        x, y, yaw = self.data.qpos
        return float(x), float(y), wrap_angle(float(yaw))

    def body_twist(self) -> tuple[float, float]:
        """(forward speed, yaw rate): the velocity along the heading and the turn rate."""
        vx, vy, yaw_rate = self.data.qvel
        yaw = self.data.qpos[2]
        return float(math.cos(yaw) * vx + math.sin(yaw) * vy), float(yaw_rate)

    def lateral_speed(self) -> float:
        """Sideways slip speed (m/s, to the robot's left)."""
        vx, vy, _ = self.data.qvel
        yaw = self.data.qpos[2]
        return float(-math.sin(yaw) * vx + math.cos(yaw) * vy)

    def random_free_xy(self, rng: np.random.Generator, noise: float = CELL_NOISE) -> np.ndarray:
        """A random free cell's nominal point + U(-noise, noise) on each axis."""
        return random_free_xy(self.grid, rng, noise)

    def in_contact(self) -> bool:
        """Whether the robot touches a wall now."""
        contacts = self.data.contact[:self.data.ncon]
        return any(self.robot_geom in (contact.geom1, contact.geom2) for contact in contacts)

    @property
    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self.data.time)
