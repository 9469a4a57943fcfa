"""Kuka demonstrations as training episodes: the paper's Kuka Diffuser models the 39-D states and no
actions (the reference's act_dim = 0)."""
import numpy as np

from diffuser_core.data.datasets import Episode, load_hdf5_episodes


def load_episodes(path: str) -> list[Episode]:
    """State-only episodes of a Kuka demonstration hdf5 (the task's dataset loader, `loader: kuka`)."""
    return [Episode(e.observations, np.zeros((len(e), 0), dtype=np.float32), e.rewards)
            for e in load_hdf5_episodes(path)]
