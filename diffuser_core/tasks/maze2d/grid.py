"""A maze's layout as a grid, with no simulator: which cell a point is in, where the walls are, and
whether the point mass fits at a position. The MuJoCo env and the ROS goal checks share it."""
from __future__ import annotations

import numpy as np

from diffuser_core.planar.costmap import OccupancyMap

from . import layouts as L


def as_vector(value, size: int, name: str) -> np.ndarray:
    """A finite float vector of the given size, or a ValueError naming the argument."""
    try:
        vector = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be {size} numbers, got {value!r}") from error
    if vector.shape != (size,):
        raise ValueError(f"{name} must have {size} entries, got shape {np.shape(value)}")
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{name} must be finite, got {vector.tolist()}")
    return vector


class MazeGrid:
    """Cells (i, j) of a wall grid; cell (i, j)'s nominal point is xy = (i, j) (D4RL's frame)."""

    def __init__(self, walls: np.ndarray):
        self.walls = np.asarray(walls, dtype=bool).copy()
        self.walls.setflags(write=False)

    @classmethod
    def of_maze(cls, name: str) -> "MazeGrid":
        """The grid of a named maze ('umaze', 'medium', 'large')."""
        return cls(L.maze_spec(name).walls)

    @staticmethod
    def cell_to_xy(cell) -> np.ndarray:
        """D4RL's nominal point of cell (i, j): xy = (i, j), where resets and goals are placed."""
        return np.array([float(cell[0]), float(cell[1])])

    @staticmethod
    def xy_to_cell(xy) -> tuple:
        """The cell whose square contains xy (squares are centred at (i, j) - 0.2)."""
        i, j = MazeGrid.cells_at(as_vector(xy, 2, "xy"))
        return (int(i), int(j))

    def wall_boxes(self) -> list:
        """Walls as (center_xy, half_size_xy) boxes in the observation frame."""
        half = np.array([L.WALL_HALF_SIZE, L.WALL_HALF_SIZE])
        return [(self.cell_to_xy(cell) + L.CELL_SQUARE_OFFSET, half.copy())
                for cell in np.argwhere(self.walls)]

    def is_free(self, xy) -> bool:
        """True when the mass (radius 0.1) centred at xy is inside the maze, clear of every wall."""
        point = as_vector(xy, 2, "xy")
        i, j = self.xy_to_cell(point)
        rows, cols = self.walls.shape
        if not (0 <= i < rows and 0 <= j < cols) or self.walls[i, j]:
            return False
        return all(distance_to_box(point, center, half) >= L.PARTICLE_RADIUS
                   for center, half in self.wall_boxes())

    def with_walls(self, cells) -> "MazeGrid":
        """This grid with more cells walled (obstacles placed at run time); each must be in the maze."""
        walls = self.walls.copy()
        for cell in cells:
            i, j = (int(k) for k in cell)
            if not (0 <= i < walls.shape[0] and 0 <= j < walls.shape[1]):
                raise ValueError(f"cell {(i, j)} is outside the {walls.shape[0]} x {walls.shape[1]} maze")
            walls[i, j] = True
        return MazeGrid(walls)

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) the cells' squares cover."""
        rows, cols = self.walls.shape
        return (-0.5 + L.CELL_SQUARE_OFFSET, rows - 0.5 + L.CELL_SQUARE_OFFSET,
                -0.5 + L.CELL_SQUARE_OFFSET, cols - 0.5 + L.CELL_SQUARE_OFFSET)

    def occupancy_map(self, resolution: float = 0.1) -> OccupancyMap:
        """The walls as an occupancy map (what a simulator publishes on `costmap`)."""
        return OccupancyMap.from_boxes(self.wall_boxes(), self.bounds(), resolution)

    @staticmethod
    def cells_at(xy: np.ndarray) -> np.ndarray:
        """(..., 2) integer cells of points (..., 2) (as xy_to_cell, vectorised)."""
        shifted = np.asarray(xy, dtype=np.float64) - L.CELL_SQUARE_OFFSET
        return np.floor(shifted + 0.5).astype(int)


def distance_to_box(point: np.ndarray, center: np.ndarray, half: np.ndarray) -> float:
    """Euclidean distance from a point to an axis-aligned box (0 inside it)."""
    outside = np.maximum(np.abs(point - center) - half, 0.0)
    return float(np.hypot(outside[0], outside[1]))
