"""Figures: plans drawn on a 2-D map, and a strip showing a plan emerge from noise.

Maps are boolean wall grids: walls[i, j] is True when the cell centred at
(x, y) = (extent[0] + (i + 0.5) * cell_w, extent[2] + (j + 0.5) * cell_h) is blocked; the default
extent puts cell (i, j) at (x, y) = (i, j). Figures are built without pyplot (no global state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def default_extent(walls: np.ndarray) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) placing cell (i, j) centred at (i, j)."""
    rows, columns = walls.shape
    return (-0.5, rows - 0.5, -0.5, columns - 0.5)


def draw_walls(ax: Axes, walls: np.ndarray, extent: Sequence[float] | None = None) -> None:
    """Shade the blocked cells of a boolean grid."""
    walls = np.asarray(walls, dtype=bool)
    if walls.ndim != 2:
        raise ValueError(f"walls must be a 2-D boolean grid, got shape {walls.shape}")
    extent = tuple(extent) if extent is not None else default_extent(walls)
    ax.imshow(walls.T, origin="lower", extent=extent, cmap="Greys", vmin=0, vmax=1.4,
              interpolation="nearest")


def draw_plan(ax: Axes, observations: np.ndarray, dims: Sequence[int] = (0, 1), color=None,
              label: str | None = None) -> None:
    """One plan as a line coloured start -> end, with start (o) and end (*) markers."""
    xy = np.asarray(observations)[:, list(dims)]
    ax.plot(xy[:, 0], xy[:, 1], "-", color=color, alpha=0.8, label=label)
    ax.scatter(xy[:, 0], xy[:, 1], c=np.linspace(0, 1, len(xy)), cmap="viridis", s=8, zorder=3)
    ax.plot(*xy[0], "o", color="tab:green", markersize=7, zorder=4)
    ax.plot(*xy[-1], "*", color="tab:red", markersize=10, zorder=4)


def plot_plans(observations: np.ndarray, dims: Sequence[int] = (0, 1), walls: np.ndarray | None = None,
               extent: Sequence[float] | None = None, title: str = "plans") -> Figure:
    """Plans (n, H, obs_dim) or (H, obs_dim) drawn over an optional wall map."""
    plans = _as_plans(observations, dims)
    figure = Figure(figsize=(5, 5))
    ax = figure.add_subplot()
    if walls is not None:
        draw_walls(ax, walls, extent)
    for plan in plans:
        draw_plan(ax, plan, dims)
    ax.set(title=title, xlabel=f"obs[{dims[0]}]", ylabel=f"obs[{dims[1]}]", aspect="equal")
    return figure


def plot_denoising_strip(chain: np.ndarray, dims: Sequence[int] = (0, 1), panels: int = 6,
                         walls: np.ndarray | None = None, extent: Sequence[float] | None = None) -> Figure:
    """A row of panels: the sample after evenly spaced denoising steps, noise -> plan.
    `chain` is (steps + 1, H, obs_dim) as returned with keep_chain."""
    chain = np.asarray(chain)
    if chain.ndim != 3:
        raise ValueError(f"chain must be (steps + 1, horizon, obs_dim), got shape {chain.shape}")
    _as_plans(chain, dims)
    indices = np.unique(np.round(np.linspace(0, len(chain) - 1, min(panels, len(chain)))).astype(int))
    figure = Figure(figsize=(3 * len(indices), 3.2))
    axes = figure.subplots(1, len(indices), squeeze=False)[0]
    limits = _limits(chain[:, :, list(dims)], walls, extent)
    for ax, index in zip(axes, indices):
        if walls is not None:
            draw_walls(ax, walls, extent)
        draw_plan(ax, chain[index], dims)
        ax.set(title=f"step {index}/{len(chain) - 1}", xlim=limits[0], ylim=limits[1], aspect="equal",
               xticks=[], yticks=[])
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write a figure (format from the file suffix), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _as_plans(observations: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    plans = np.asarray(observations, dtype=np.float64)
    plans = plans[None] if plans.ndim == 2 else plans
    if plans.ndim != 3:
        raise ValueError(f"plans must be (H, obs_dim) or (n, H, obs_dim), got shape {plans.shape}")
    if len(dims) != 2 or max(dims) >= plans.shape[-1] or min(dims) < 0:
        raise ValueError(f"dims must be two observation indices below {plans.shape[-1]}, got {dims}")
    return plans


def _limits(xy: np.ndarray, walls, extent):
    if walls is not None:
        box = extent if extent is not None else default_extent(np.asarray(walls))
        return (box[0], box[1]), (box[2], box[3])
    xy = xy[-1]  # frame on the final plan; early noisy samples may leave the frame
    low, high = xy.min(axis=0), xy.max(axis=0)
    pad = 0.15 * np.maximum(high - low, 1e-3)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])
