"""Kuka block stacking (paper §5.3 on pybullet): one state model, three tasks by test-time conditions.

Modules: tasks (blocks, relations, scores; no simulator), world (pybullet), demos (the dataset
generator), episodes (state-only training episodes), kinematics and urdf (the arm, no simulator),
guides, refine, stages (the stage runner the evaluation and the arm planner share), evaluation.
"""
from .. import Task
from .episodes import load_episodes

# The paper's Table 3 (Diffuser, mean ± standard error over 100 episodes).
PAPER_SCORES = {"unconditional": (58.7, 2.5), "conditional": (45.6, 3.1), "rearrange": (58.9, 3.4)}


def make_env(**settings):
    """A pybullet block world (world.KukaBlockWorld; close it, or use it as a context manager)."""
    from .world import KukaBlockWorld

    return KukaBlockWorld(**settings)


def eval_config(**fields):
    """An evaluation config (evaluation.KukaEvalConfig)."""
    from .evaluation import KukaEvalConfig

    return KukaEvalConfig(**fields)


def evaluate(checkpoint, config, progress: bool = True):
    """The paper's score of a checkpoint on one task mode (evaluation.evaluate)."""
    from .evaluation import evaluate as run

    return run(checkpoint, config, progress)


TASK = Task("kuka", load_episodes, make_env, evaluate, eval_config, PAPER_SCORES)
