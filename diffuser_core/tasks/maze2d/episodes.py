"""Maze2D's episodes as the reference code trains on them: a segment ends when the mass leaves the
maze's fixed goal (the file's timeouts are ignored), read from a D4RL-layout hdf5."""
from pathlib import Path

import numpy as np

from diffuser_core.data.d4rl_hdf5 import DatasetError, check_d4rl_data, load_d4rl_hdf5, read_hdf5_attrs, split_episodes
from diffuser_core.data.datasets import Episode

from . import layouts


def load_episodes(path: str) -> list[Episode]:
    """The training episodes of a Maze2D hdf5 (the task's dataset loader, `loader: maze2d`)."""
    return [Episode(e["observations"], e["actions"], e["rewards"]) for e in load_segments(path)]


def maze2d_segment_ends(observations: np.ndarray, goal_xy,
                        threshold: float = layouts.SEGMENT_GOAL_THRESHOLD) -> np.ndarray:
    """Reference maze2d_set_terminals: step t ends a segment iff xy_t is within `threshold`
    (strictly) of the goal and xy_{t+1} is not, i.e. the mass is just leaving the goal."""
    xy = np.asarray(observations)[:, :2]
    at_goal = np.linalg.norm(xy - np.asarray(goal_xy, dtype=np.float64), axis=1) < threshold
    ends = np.zeros(len(xy), dtype=bool)
    ends[:-1] = at_goal[:-1] & ~at_goal[1:]
    return ends


def maze2d_episodes(data: dict, maze: str) -> list:
    """Segment a Maze2D stream as the reference code trains on it.

    Ends = terminals or (leaving the maze's fixed goal), replacing the file's timeouts; then,
    like its process_maze2d_episode, each segment loses its last step, which becomes the last
    `next_observations` entry. Empty segments are dropped.
    """
    goal_xy = np.array(layouts.maze_spec(maze).goal_cell, dtype=np.float64)
    length = check_d4rl_data(data)
    ends = maze2d_segment_ends(data["observations"], goal_xy)
    ends |= np.asarray(data["terminals"]).reshape(length).astype(bool)
    episodes = []
    for segment in split_episodes(data, ends):
        if len(segment["observations"]) < 2:
            continue
        episode = {key: array[:-1] for key, array in segment.items()}
        episode["next_observations"] = segment["observations"][1:]
        episodes.append(episode)
    return episodes


def load_segments(path, maze: str = None) -> list:
    """Load a Maze2D hdf5 (ours or D4RL's) and segment it with maze2d_episodes.

    The maze comes from `maze`, else the file's 'maze' attribute, else its name
    (e.g. 'maze2d-umaze-sparse-v1.hdf5').
    """
    data = load_d4rl_hdf5(path)
    return maze2d_episodes(data, maze or _maze_name_of(Path(path)))


def _maze_name_of(path: Path) -> str:
    name = read_hdf5_attrs(path).get("maze")
    if name in layouts.MAZES:
        return name
    found = [maze for maze in layouts.MAZES if maze in path.name.lower()]
    if len(found) != 1:
        raise DatasetError(f"{path}: cannot tell which maze this is; pass maze= one of "
                           f"{sorted(layouts.MAZES)}")
    return found[0]

