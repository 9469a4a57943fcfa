"""A density of the states the offline data visited: a histogram over a few state columns (e.g. a
robot's position), fitted by counting. A plan through a region the data never entered (a wall, an
obstacle, off the map) has states of near-zero density; planning.choice ranks sampled plans by it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from diffuser_core.checkpoint import read_model_file, write_safetensors

VISIT_DENSITY_KEY = "visit_density"  # the metadata key of a visit-density file


class VisitDensity:
    """Histogram of visited states over `dims`, cells of `cell` size between `low` and `high`; the
    log-density of a cell no data entered is `floor` (a state outside the box counts as such a cell)."""

    def __init__(self, dims: Sequence[int], low, high, cell: float, counts: np.ndarray, floor: float = -20.0):
        self.dims, self.cell, self.floor = tuple(int(d) for d in dims), float(cell), float(floor)
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.counts = np.asarray(counts, dtype=np.float64)
        if not self.dims or self.cell <= 0 or self.counts.ndim != len(self.dims) or self.counts.sum() <= 0:
            raise ValueError("VisitDensity needs dims, a positive cell size and counts with one axis per dim")
        self.log_probability = np.where(self.counts > 0, np.log(np.maximum(self.counts, 1) / self.counts.sum()),
                                        self.floor)

    @classmethod
    def fit(cls, states: np.ndarray, dims: Sequence[int], cell: float, margin: float = 0.0) -> "VisitDensity":
        """Count `states` (N, state_dim) in cells of size `cell` over their box on `dims` (widened by `margin`)."""
        points = np.asarray(states, dtype=np.float64)[:, list(dims)]
        low, high = points.min(0) - margin, points.max(0) + margin
        shape = np.maximum(1, np.ceil((high - low) / cell).astype(int))
        counts = np.zeros(shape)
        np.add.at(counts, tuple(np.minimum(((points - low) / cell).astype(int), shape - 1).T), 1)
        return cls(dims, low, high, cell, counts)

    def log_density(self, states: np.ndarray) -> np.ndarray:
        """(...,) log-probability of the cell each state (..., state_dim) falls in (`floor` outside)."""
        points = np.asarray(states, dtype=np.float64)[..., list(self.dims)]
        index = np.floor((points - self.low) / self.cell).astype(int)
        inside = np.all((index >= 0) & (index < np.array(self.counts.shape)), axis=-1)
        clipped = np.clip(index, 0, np.array(self.counts.shape) - 1)
        values = self.log_probability[tuple(np.moveaxis(clipped, -1, 0))]
        return np.where(inside, values, self.floor)


def save_visit_density(path: str | Path, density: VisitDensity, extra: dict | None = None) -> Path:
    """One .safetensors file: the counts, the box, the cell size and the columns (atomic write)."""
    info = {"dims": list(density.dims), "low": density.low.tolist(), "high": density.high.tolist(),
            "cell": density.cell, "floor": density.floor, **(extra or {})}
    return write_safetensors(path, {"counts": torch.as_tensor(density.counts)}, {VISIT_DENSITY_KEY: json.dumps(info)})


def load_visit_density(path: str | Path) -> tuple[VisitDensity, dict]:
    """(density, its stored info) of a visit-density file."""
    tensors, info = read_model_file(path, VISIT_DENSITY_KEY, "visit-density")
    density = VisitDensity(info["dims"], info["low"], info["high"], info["cell"], tensors["counts"].numpy(),
                           info["floor"])
    return density, info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="the offline data (its loader reads it)")
    parser.add_argument("--loader", required=True, help="a registered loader name or package.module:function")
    parser.add_argument("--dims", type=int, nargs="+", required=True, help="the state columns it counts over")
    parser.add_argument("--cell", type=float, required=True, help="cell size in those columns' units")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from diffuser_core.data.datasets import resolve_loader

    states = np.concatenate([episode.observations for episode in resolve_loader(args.loader)(args.dataset)])
    density = VisitDensity.fit(states, args.dims, args.cell)
    save_visit_density(args.out, density, {"dataset": str(args.dataset), "loader": args.loader})
    print(f"{len(states)} states in {int((density.counts > 0).sum())} of {density.counts.size} cells; wrote {args.out}")


if __name__ == "__main__":
    main()
