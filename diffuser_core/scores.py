"""Episode seeds and the statistics every task's evaluation reports (mean ± standard error)."""
import math
from typing import Sequence

import numpy as np


def standard_error(values: Sequence[float]) -> float:
    """std / sqrt(n) with the population std (ddof 0), as the reference's read_results.py;
    0 for a single value."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("standard_error needs at least one value")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"standard_error needs finite values, got {values.tolist()}")
    return float(values.std() / math.sqrt(values.size))


def episode_seeds(seed: int, episodes: int) -> list[int]:
    """Independent per-episode seeds from one seed; episode i's seed does not depend on the count."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(episodes)]
