"""The worlds the differential-drive robot drives in, on the maze grid's conventions
(diffuser_core.tasks.maze2d: row i, column j is cell (i, j), its nominal point xy = (i, j), '#' a wall).

"room" is a small room of 5 × 5 free cells with three wall cells inside, so that most routes go around
something; every maze2d layout ("umaze", "medium", "large") is a world too.
"""
from __future__ import annotations

import numpy as np

from diffuser_core.tasks.maze2d import layouts as maze_layouts
from diffuser_core.tasks.maze2d.grid import MazeGrid

ROOM = (
    "#######",
    "#OOOOO#",
    "#OO#OO#",
    "#OOOOO#",
    "#O#O#O#",
    "#OOOOO#",
    "#######",
)
ROOMS = {"room": ROOM}
CELL_NOISE = 0.1  # m: a random free point is its cell's nominal point + U(-CELL_NOISE, CELL_NOISE) on each axis


def layout_names() -> list[str]:
    """Every world's name: the rooms and the maze2d mazes."""
    return sorted({*ROOMS, *maze_layouts.MAZES})


def layout_grid(name: str) -> MazeGrid:
    """The grid of the world called `name` ("room" or a maze2d maze), with a clear error for others."""
    if name in ROOMS:
        return MazeGrid(np.array([[tile == maze_layouts.WALL_TILE for tile in row] for row in ROOMS[name]]))
    if name in maze_layouts.MAZES:
        return MazeGrid.of_maze(name)
    raise ValueError(f"unknown layout {name!r}; choose one of {layout_names()}")


def free_cells(grid: MazeGrid) -> list[tuple[int, int]]:
    """The grid's free cells (i, j), sorted."""
    return [(int(i), int(j)) for i, j in np.argwhere(~grid.walls)]


def random_free_xy(grid: MazeGrid, rng: np.random.Generator, noise: float = CELL_NOISE) -> np.ndarray:
    """A random free cell's nominal point plus U(-noise, noise) on each axis (clear of the walls for
    noise up to 0.2: the nominal point lies 0.3 m from its square's nearer sides)."""
    cells = free_cells(grid)
    if not cells:
        raise ValueError("the grid has no free cell")
    cell = cells[int(rng.integers(len(cells)))]
    return grid.cell_to_xy(cell) + rng.uniform(-noise, noise, size=2)
