"""Maze2D / Multi2D (D4RL maze2d-*-v1 on MuJoCo): a point mass planned as (x, y, vx, vy) states.

Modules: layouts (the mazes), grid (cells and walls, no simulator), env (MuJoCo), data (the
dataset generator), episodes (the training segments), controller (plan tracking), evaluation.
"""
from .. import Task
from .episodes import load_episodes

# The paper's Table 1 (Diffuser, normalized score, mean ± standard error), keyed (maze, multi_goal).
PAPER_SCORES = {
    ("umaze", False): (113.9, 3.1), ("medium", False): (121.5, 2.7), ("large", False): (123.0, 6.4),
    ("umaze", True): (128.9, 1.8), ("medium", True): (127.2, 3.4), ("large", True): (132.1, 5.8),
}


def make_env(maze: str = "umaze", seed=None, multi_goal: bool = False):
    """A Maze2D (or, with multi_goal, Multi2D) MuJoCo env."""
    from .env import Maze2DEnv

    return Maze2DEnv(maze, seed=seed, multi_goal=multi_goal)


def eval_config(**fields):
    """An evaluation config (evaluation.Maze2DEvalConfig)."""
    from .evaluation import Maze2DEvalConfig

    return Maze2DEvalConfig(**fields)


def evaluate(checkpoint, config, progress: bool = True):
    """The paper's normalized score of a checkpoint (evaluation.evaluate)."""
    from .evaluation import evaluate as run

    return run(checkpoint, config, progress)


TASK = Task("maze2d", load_episodes, make_env, evaluate, eval_config, PAPER_SCORES)
