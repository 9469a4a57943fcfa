"""Maze2D: D4RL's point mass in a maze, on the `mujoco` package with a gym-like API.

Frame: every position here is in D4RL's observation frame (the slide joints' qpos), where cell
(i, j)'s nominal point is xy = (i, j) and its square is centred 0.2 lower-left (see maze_layouts).
"""
import mujoco
import numpy as np

from diffuser_core.tasks.maze2d import layouts as L
from diffuser_core.tasks.maze2d.grid import MazeGrid, as_vector

OBSERVATION_DIM = 4  # (x, y, vx, vy)
ACTION_DIM = 2  # force on x and y, in [-1, 1] (times the motor gear)


def maze_xml(spec: L.MazeSpec, walls: np.ndarray | None = None) -> str:
    """MJCF of D4RL's point_maze(): a sphere on two slide joints, one box per wall tile (of
    `walls`, default the maze's own)."""
    wall_cells = spec.walls if walls is None else walls
    walls = "\n".join(
        f'    <geom name="wall_{i}_{j}" type="box" material="wall" conaffinity="1" '
        f'pos="{i + L.WALL_POSITION_OFFSET} {j + L.WALL_POSITION_OFFSET} 0" '
        f'size="{L.WALL_HALF_SIZE} {L.WALL_HALF_SIZE} {L.WALL_HALF_HEIGHT}"/>'
        for i, j in zip(*np.nonzero(wall_cells))
    )
    px, py = L.PARTICLE_BODY_POSITION
    motors = "\n".join(
        f'    <motor joint="{joint}" ctrlrange="-{L.CONTROL_LIMIT} {L.CONTROL_LIMIT}" '
        f'ctrllimited="true" gear="{L.MOTOR_GEAR}"/>'
        for joint in ("ball_x", "ball_y")
    )
    return f"""<mujoco model="point_maze_{spec.name}">
  <compiler inertiafromgeom="true" angle="radian"/>
  <option timestep="{L.TIMESTEP}" gravity="0 0 0" iterations="{L.SOLVER_ITERATIONS}"
          integrator="{L.INTEGRATOR}"/>
  <default>
    <joint damping="{L.JOINT_DAMPING}" limited="false"/>
    <geom friction="{L.GEOM_FRICTION}" density="{L.GEOM_DENSITY}" margin="{L.GEOM_MARGIN}"
          condim="{L.GEOM_CONDIM}" contype="2" conaffinity="1"/>
  </default>
  <asset>
    <material name="wall" rgba=".7 .5 .3 1"/>
    <material name="target" rgba=".6 .3 .3 1"/>
  </asset>
  <worldbody>
    <geom name="ground" type="plane" size="{' '.join(map(str, L.GROUND_SIZE))}"
          pos="0 0 {L.GROUND_HEIGHT}" contype="1" conaffinity="0"/>
    <body name="particle" pos="{px} {py} 0">
      <geom name="particle_geom" type="sphere" size="{L.PARTICLE_RADIUS}" contype="1"/>
      <joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
      <joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
    </body>
    <site name="target_site" pos="0 0 0" size="0.2" material="target"/>
{walls}
  </worldbody>
  <actuator>
{motors}
  </actuator>
</mujoco>
"""


class Maze2DEnv:
    """D4RL maze2d-*-v1 (sparse reward) with a gym-like API; Multi2D when multi_goal=True.

    reset() starts at a random open cell (+U(-0.1, 0.1), velocity N(0, 0.1)); the goal is the
    maze's fixed 'G' cell, or a random open cell (+U(-0.1, 0.1)) each reset when multi_goal.
    Reward 1 within 0.5 of the goal; done only at the episode limit (300/600/800 steps).
    """

    observation_dim = OBSERVATION_DIM
    action_dim = ACTION_DIM

    def __init__(self, maze: str = "umaze", seed=None, multi_goal: bool = False, obstacles=()):
        self.spec = L.maze_spec(maze)
        self.multi_goal = bool(multi_goal)
        self.grid = MazeGrid(self.spec.walls).with_walls(obstacles)  # obstacles: cells walled at run time
        self._walls = self.grid.walls
        self._open_cells = [tuple(int(k) for k in cell) for cell in np.argwhere(~self._walls)]
        self.model = mujoco.MjModel.from_xml_string(maze_xml(self.spec, self._walls))
        self.data = mujoco.MjData(self.model)
        self._rng = np.random.default_rng(seed)
        self._target = self.cell_to_xy(self.spec.goal_cell)
        self._elapsed_steps = 0

    # ------------------------------------------------------------------ gym-like interface
    @property
    def max_episode_steps(self) -> int:
        """D4RL's time limit for this maze (300 umaze, 600 medium, 800 large)."""
        return self.spec.max_episode_steps

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset."""
        return self._elapsed_steps

    def reset(self, seed=None, start_cell=None, goal_cell=None) -> np.ndarray:
        """Start a new episode; optional seed, start cell and goal cell (else drawn as in D4RL)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if start_cell is None:
            start_cell = self._random_open_cell()
        start = self.cell_to_xy(self._checked_cell(start_cell, "start_cell"))
        mujoco.mj_resetData(self.model, self.data)
        position = start + self._rng.uniform(-L.RESET_POSITION_NOISE, L.RESET_POSITION_NOISE, 2)
        velocity = self._rng.normal(0.0, L.RESET_VELOCITY_STD, size=2)
        self._target = self._episode_target(goal_cell)
        self.set_state(position, velocity)
        self._elapsed_steps = 0
        return self.observation()

    def _episode_target(self, goal_cell) -> np.ndarray:
        """The given goal cell, else a random goal (Multi2D), else the maze's fixed goal."""
        if goal_cell is not None:
            return self.cell_to_xy(self._checked_cell(goal_cell, "goal_cell"))
        if self.multi_goal:
            return self.random_goal()
        return self.cell_to_xy(self.spec.goal_cell)

    def step(self, action):
        """Apply a force in [-1, 1]^2 for one step; returns (obs, reward, done, info)."""
        force = np.clip(as_vector(action, ACTION_DIM, "action"), -L.CONTROL_LIMIT, L.CONTROL_LIMIT)
        self.simulate(force[0], force[1])
        self._elapsed_steps += 1
        observation = self.observation()
        reward = self.reward(observation[:2])
        done = self._elapsed_steps >= self.max_episode_steps
        return observation, reward, done, {"elapsed_steps": self._elapsed_steps}

    def simulate(self, force_x: float, force_y: float) -> None:
        """One physics step like D4RL's step(): clip velocity to [-5, 5], simulate (unchecked)."""
        qvel = self.data.qvel
        qvel[0] = min(max(qvel[0], -L.VELOCITY_LIMIT), L.VELOCITY_LIMIT)
        qvel[1] = min(max(qvel[1], -L.VELOCITY_LIMIT), L.VELOCITY_LIMIT)
        self.data.ctrl[0] = force_x
        self.data.ctrl[1] = force_y
        for _ in range(L.FRAME_SKIP):
            mujoco.mj_step(self.model, self.data)

    def observation(self) -> np.ndarray:
        """(x, y, vx, vy): D4RL's observation, qpos followed by qvel."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    def set_state(self, position, velocity=(0.0, 0.0)) -> None:
        """Place the mass at `position` with `velocity` (observation frame)."""
        self.data.qpos[:] = as_vector(position, 2, "position")
        self.data.qvel[:] = as_vector(velocity, 2, "velocity")
        mujoco.mj_forward(self.model, self.data)

    def reward(self, xy) -> float:
        """D4RL's sparse reward: 1 within GOAL_RADIUS (0.5) of the target, else 0."""
        distance = np.hypot(xy[0] - self._target[0], xy[1] - self._target[1])
        return 1.0 if distance <= L.GOAL_RADIUS else 0.0

    def normalized_score(self, episode_return: float) -> float:
        """Paper-table score 100 * (return - ref_min) / (ref_max - ref_min); D4RL omits the 100."""
        low, high = self.spec.ref_min_score, self.spec.ref_max_score
        return 100.0 * (float(episode_return) - low) / (high - low)

    # -------------------------------------------------------------------------- the goal
    @property
    def target(self) -> np.ndarray:
        """The goal position xy (observation frame)."""
        return np.array(self._target, dtype=np.float64)

    def random_goal(self) -> np.ndarray:
        """A random open cell + U(-0.1, 0.1): D4RL's set_target() draw (Multi2D and data goals)."""
        return self.cell_to_xy(self._random_open_cell()) + self._rng.uniform(
            -L.TARGET_POSITION_NOISE, L.TARGET_POSITION_NOISE, size=2)

    def set_target(self, xy) -> None:
        """Set the goal position (any finite xy; check is_free(xy) first for a reachable goal)."""
        self._target = as_vector(xy, 2, "target")

    # -------------------------------------------------------------------------- geometry
    @property
    def layout(self) -> np.ndarray:
        """Read-only boolean grid, True where cell (i, j) (layout row i, column j) is a wall."""
        return self._walls

    def open_cells(self) -> list:
        """All non-wall cells (i, j), sorted; resets and random goals are drawn uniformly here."""
        return list(self._open_cells)

    @staticmethod
    def cell_to_xy(cell) -> np.ndarray:
        """D4RL's nominal point of cell (i, j): xy = (i, j), where resets and goals are placed."""
        return MazeGrid.cell_to_xy(cell)

    def xy_to_cell(self, xy) -> tuple:
        """The cell whose square contains xy (squares are centred at (i, j) - 0.2)."""
        return self.grid.xy_to_cell(xy)

    def wall_boxes(self) -> list:
        """Walls as (center_xy, half_size_xy) boxes in the observation frame, for drawing."""
        return self.grid.wall_boxes()

    def is_free(self, xy) -> bool:
        """True when the mass (radius 0.1) centred at xy is inside the maze, clear of every wall."""
        return self.grid.is_free(xy)

    # -------------------------------------------------------------------------- helpers
    def _random_open_cell(self) -> tuple:
        return self._open_cells[self._rng.integers(len(self._open_cells))]

    def _checked_cell(self, cell, name: str) -> tuple:
        try:
            i, j = (int(k) for k in cell)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a pair of ints (i, j), got {cell!r}") from error
        if (i, j) not in self._open_cells:
            raise ValueError(f"{name} {(i, j)} is not an open cell of maze {self.spec.name!r}")
        return (i, j)
