"""Maze2D layouts and every constant of the D4RL point-mass maze, each with its source.

Sources (read, not copied):
  [maze_model]  D4RL d4rl/pointmaze/maze_model.py (layouts, MJCF, reset, reward, velocity clip)
  [waypoint]    D4RL d4rl/pointmaze/waypoint_controller.py (expert that generated the datasets)
  [q_iter]      D4RL d4rl/pointmaze/q_iteration.py + gridcraft/grid_env.py (grid planner)
  [register]    D4RL d4rl/pointmaze/__init__.py, maze2d-*-v1 (episode limits, reference scores)
  [infos]       D4RL d4rl/infos.py (REF_MIN_SCORE / REF_MAX_SCORE, same numbers as [register])
  [generate]    D4RL scripts/generation/generate_maze2d_datasets.py (data loop, hdf5 keys, dtypes)
  [relabel]     D4RL scripts/generation/relabel_maze2d_rewards.py (sparse rewards of the datasets)
  [diffuser]    jannerm/diffuser, branch maze2d: diffuser/datasets/preprocessing.py
                (maze2d_set_terminals) and scripts/plan_maze2d.py (tracking rule)

Grid convention (as in D4RL): layout row i, column j is cell (i, j); D4RL's observation frame
puts that cell's nominal point (resets, goals) at xy = (i, j). See CELL_SQUARE_OFFSET for where
the walls really are in that frame.
"""
from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------------- layouts
# '#' wall, 'O' open, 'G' open + the env's fixed goal. [maze_model] U_MAZE, MEDIUM_MAZE, LARGE_MAZE
# (D4RL joins rows with '\\'; these are the same rows, one string per row).
WALL_TILE = "#"
# [maze_model] parse_maze: ' ', 'O', '0' are empty, 'G' is the (open) goal
OPEN_TILES = frozenset("O G0")
GOAL_TILE = "G"

U_MAZE = (
    "#####",
    "#GOO#",
    "###O#",
    "#OOO#",
    "#####",
)
MEDIUM_MAZE = (
    "########",
    "#OO##OO#",
    "#OO#OOO#",
    "##OOO###",
    "#OO#OOO#",
    "#O#OO#O#",
    "#OOO#OG#",
    "########",
)
LARGE_MAZE = (
    "############",
    "#OOOO#OOOOO#",
    "#O##O#O#O#O#",
    "#OOOOOO#OOO#",
    "#O####O###O#",
    "#OO#O#OOOOO#",
    "##O#O#O#O###",
    "#OO#OOO#OGO#",
    "############",
)

# ------------------------------------------------------------------------------ MuJoCo model
# [maze_model] point_maze(): <option timestep="0.01" gravity="0 0 0" iterations="20"
#                                    integrator="Euler">
TIMESTEP = 0.01
SOLVER_ITERATIONS = 20
INTEGRATOR = "Euler"
# [maze_model] MazeEnv.__init__: MujocoEnv(..., frame_skip=1)
FRAME_SKIP = 1
# [maze_model] default joint damping=1, limited='false'
JOINT_DAMPING = 1.0
# [maze_model] default geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1"
#              contype="2" conaffinity="1"
GEOM_FRICTION = "0.5 0.1 0.1"
GEOM_DENSITY = 1000.0
GEOM_MARGIN = 0.002
GEOM_CONDIM = 1
# [maze_model] ground plane size="40 40 0.25" pos="0 0 -0.1", contype=1 conaffinity=0
GROUND_SIZE = (40.0, 40.0, 0.25)
GROUND_HEIGHT = -0.1
# [maze_model] particle body pos=[1.2, 1.2, 0]; sphere geom size=0.1; slide joints ball_x, ball_y.
# qpos (= the observation) is the displacement from this body position.
PARTICLE_BODY_POSITION = (1.2, 1.2)
PARTICLE_RADIUS = 0.1
# [maze_model] wall (w, h): box pos=[w + 1.0, h + 1.0, 0], size=[0.5, 0.5, 0.2] (half sizes)
WALL_POSITION_OFFSET = 1.0
WALL_HALF_SIZE = 0.5
WALL_HALF_HEIGHT = 0.2
# [maze_model] motor on ball_x / ball_y: ctrlrange=[-1, 1], ctrllimited=True, gear=100
MOTOR_GEAR = 100.0
CONTROL_LIMIT = 1.0
# [maze_model] clip_velocity(): qvel clipped to [-5, 5] before every simulation step
VELOCITY_LIMIT = 5.0
# Derived: in the observation frame, cell (i, j)'s square is centred at (i, j) + this offset
# (= 1.0 - 1.2 = -0.2): D4RL's nominal cell point sits 0.2 up-right of the square's centre.
CELL_SQUARE_OFFSET = WALL_POSITION_OFFSET - PARTICLE_BODY_POSITION[0]

# --------------------------------------------------------------------------- reset and reward
# [maze_model] reset_model(): qpos = cell + U(-0.1, 0.1); qvel = init_qvel (0) + N(0, 1) * 0.1
RESET_POSITION_NOISE = 0.1
RESET_VELOCITY_STD = 0.1
# [maze_model] set_target() with no argument: random open cell + U(-0.1, 0.1) (Multi2D goals)
TARGET_POSITION_NOISE = 0.1
# [maze_model] step(), reward_type 'sparse': 1.0 if ||xy - target|| <= 0.5 else 0.0
GOAL_RADIUS = 0.5
# [diffuser] maze2d_set_terminals: at_goal = distance < 0.5 (strict)
SEGMENT_GOAL_THRESHOLD = 0.5

# ------------------------------------------------------------------ data-generating expert
# [waypoint] WaypointController(solve_thresh=0.1, p_gain=10.0, d_gain=-1.0), vel_thresh = 0.1
EXPERT_SOLVE_THRESHOLD = 0.1
EXPERT_MOVE_THRESHOLD = 0.1  # D4RL's "vel_thresh": compared with the displacement in one step
EXPERT_P_GAIN = 10.0
EXPERT_D_GAIN = -1.0
# [waypoint] _new_target: intermediate waypoints = cell - U(0, 1) * 0.2; rollout max_ts = 100
WAYPOINT_JITTER = 0.2
MAX_WAYPOINTS = 100
# [waypoint] q_iteration(num_itrs=50, discount=0.99); [q_iter] ent_wt=0 (hard max), teps=0
Q_ITERATIONS = 50
Q_DISCOUNT = 0.99
# [q_iter] grid_env.ACT_DICT order NOOP, UP, DOWN, LEFT, RIGHT as (di, dj); argmax ties pick
# the first, so the order decides which of two equally short paths the expert takes.
GRID_MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))
# [generate] --noisy adds N(0, 0.5) to the expert action (off by default)
NOISY_ACTION_STD = 0.5


@dataclass(frozen=True)
class MazeSpec:
    """One D4RL maze2d-*-v1 task: layout, fixed goal, episode limit, reference scores, data size."""

    name: str
    rows: tuple
    max_episode_steps: int
    ref_min_score: float
    ref_max_score: float
    dataset_size: int

    def __post_init__(self):
        widths = {len(row) for row in self.rows}
        if len(widths) != 1:
            raise ValueError(f"maze {self.name!r}: rows have different lengths {sorted(widths)}")
        unknown = set("".join(self.rows)) - OPEN_TILES - {WALL_TILE}
        if unknown:
            raise ValueError(f"maze {self.name!r}: unknown tiles {sorted(unknown)}")
        if "".join(self.rows).count(GOAL_TILE) != 1:
            raise ValueError(f"maze {self.name!r}: needs exactly one goal tile {GOAL_TILE!r}")
        if self.max_episode_steps <= 0 or self.dataset_size <= 0:
            raise ValueError(f"maze {self.name!r}: episode limit and dataset size must be > 0")
        if not self.ref_max_score > self.ref_min_score:
            raise ValueError(f"maze {self.name!r}: ref_max_score must exceed ref_min_score")

    @property
    def walls(self) -> np.ndarray:
        """Boolean grid, True where cell (i, j) is a wall."""
        return np.array([[tile == WALL_TILE for tile in row] for row in self.rows])

    @property
    def goal_cell(self) -> tuple:
        """The 'G' cell: the fixed evaluation goal (D4RL's target when reset_target=False)."""
        for i, row in enumerate(self.rows):
            if GOAL_TILE in row:
                return (i, row.index(GOAL_TILE))
        raise AssertionError("unreachable: validated in __post_init__")


# [register] maze2d-{umaze,medium,large}-v1: max_episode_steps 300 / 600 / 800,
# ref_min_score 23.85 / 13.13 / 6.7, ref_max_score 161.86 / 277.39 / 273.99 (also [infos]).
# dataset_size: [generate] default --num_samples 1e6; the hosted v1 datasets hold 1M / 2M / 4M
# steps (umaze's last timeout index is 999868 in D4RL issue #85; medium/large per DESIGN.md).
MAZES = {
    "umaze": MazeSpec("umaze", U_MAZE, 300, 23.85, 161.86, 1_000_000),
    "medium": MazeSpec("medium", MEDIUM_MAZE, 600, 13.13, 277.39, 2_000_000),
    "large": MazeSpec("large", LARGE_MAZE, 800, 6.7, 273.99, 4_000_000),
}


def maze_spec(name: str) -> MazeSpec:
    """Look up a maze by name ('umaze', 'medium', 'large'), with a clear error for others."""
    if name not in MAZES:
        raise ValueError(f"unknown maze {name!r}; choose one of {sorted(MAZES)}")
    return MAZES[name]
