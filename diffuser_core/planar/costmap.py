"""Obstacles that appear at test time, as a cost on planned positions (no retraining).

An occupancy map (a grid of occupied cells over the plane, nav_msgs/OccupancyGrid's layout: cell
(ix, iy) covers [x0 + ix r, x0 + (ix + 1) r) × [y0 + iy r, ...)) becomes a signed distance field:
the distance from a point to the nearest occupied cell, negative inside one. The cost of a plan is
sum_t relu(margin - d(p_t))², differentiable in the positions (bilinear interpolation of the field),
so it guides every denoising step (mu + alpha Sigma grad J, J = -cost); `rank` scores finished
candidates: the cheapest one that enters no occupied cell wins.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.guides import CostGuide

DISTANCE_CHUNK = 256  # cells per block when computing the distance field (bounds memory)
ENTERED_PENALTY = 1e6  # added to the rank of a candidate that enters an obstacle
KEEP_OFF = 0.1  # m: a candidate "enters" an obstacle when a state comes closer to it than this (the
# robot's radius). Cells the static map (the walls a model was trained among) already holds are walls,
# not obstacles: plans graze wall corners, and the robot slides along them.


@dataclass(frozen=True)
class OccupancyMap:
    """occupied: (height, width) bool, row iy, column ix; resolution: m per cell; origin: the (x, y)
    of cell (0, 0)'s outer corner."""

    occupied: np.ndarray
    resolution: float
    origin: tuple[float, float]

    def __post_init__(self):
        occupied = np.asarray(self.occupied, dtype=bool)
        if occupied.ndim != 2 or occupied.size == 0:
            raise ValueError(f"an occupancy map is a non-empty 2-D grid, got shape {occupied.shape}")
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise ValueError(f"resolution must be a positive number of metres, got {self.resolution}")
        if len(self.origin) != 2 or not all(math.isfinite(v) for v in self.origin):
            raise ValueError(f"origin must be a finite (x, y), got {self.origin}")
        occupied.setflags(write=False)
        object.__setattr__(self, "occupied", occupied)
        object.__setattr__(self, "origin", (float(self.origin[0]), float(self.origin[1])))

    @classmethod
    def from_boxes(cls, boxes: Sequence[tuple[Sequence[float], Sequence[float]]], bounds: Sequence[float],
                   resolution: float) -> "OccupancyMap":
        """A map of axis-aligned boxes (center xy, half size xy) over bounds (x0, x1, y0, y1)."""
        x0, x1, y0, y1 = (float(v) for v in bounds)
        width, height = math.ceil((x1 - x0) / resolution), math.ceil((y1 - y0) / resolution)
        centers = cls(np.zeros((height, width), dtype=bool), resolution, (x0, y0)).cell_centers()
        occupied = np.zeros((height, width), dtype=bool)
        for center, half in boxes:
            occupied |= np.all(np.abs(centers - np.asarray(center)) < np.asarray(half), axis=-1)
        return cls(occupied, resolution, (x0, y0))

    @property
    def any_occupied(self) -> bool:
        return bool(self.occupied.any())

    def inflated(self, radius: float) -> "OccupancyMap":
        """This map with every free cell whose centre is closer than `radius` to an occupied cell
        occupied too (nav2's inflation, as a hard margin)."""
        return OccupancyMap(self.signed_distance() < radius, self.resolution, self.origin)

    def cell_of(self, xy: Sequence[float]) -> tuple[int, int]:
        """(row, column) of the cell holding point `xy`, clipped onto the map."""
        height, width = self.occupied.shape
        return (int(np.clip((xy[1] - self.origin[1]) // self.resolution, 0, height - 1)),
                int(np.clip((xy[0] - self.origin[0]) // self.resolution, 0, width - 1)))

    def cell_centers(self) -> np.ndarray:
        """(height, width, 2) xy of every cell's centre."""
        height, width = self.occupied.shape
        xs = self.origin[0] + (np.arange(width) + 0.5) * self.resolution
        ys = self.origin[1] + (np.arange(height) + 0.5) * self.resolution
        return np.stack(np.meshgrid(xs, ys), axis=-1)

    def signed_distance(self) -> np.ndarray:
        """(height, width) metres from each cell centre to the nearest occupied cell's boundary;
        negative inside occupied cells (to the nearest free cell's boundary). Off the map is free.
        Computed once per map (a map does not change), read-only."""
        cached = self.__dict__.get("_signed_distance")
        if cached is None:
            cached = self._signed_distance_field()
            cached.setflags(write=False)
            object.__setattr__(self, "_signed_distance", cached)
        return cached

    def _signed_distance_field(self) -> np.ndarray:
        centers = self.cell_centers().reshape(-1, 2)
        flat = self.occupied.reshape(-1)
        outside = _nearest_distance(centers, centers[_edge(self.occupied).reshape(-1)]) - self.resolution / 2
        inside = _nearest_distance(centers, centers[_edge(~self.occupied).reshape(-1)]) - self.resolution / 2
        return np.where(flat, -np.maximum(inside, 0.0), np.maximum(outside, 0.0)).reshape(self.occupied.shape)


def geodesic_distance(occupancy: OccupancyMap, goal_xy: Sequence[float]) -> np.ndarray:
    """(height, width) metres from each free cell's centre to the goal through free cells (8-connected
    Dijkstra, no diagonal step past an occupied cell: walls that meet at a corner are closed);
    occupied or unreachable cells get the largest reachable distance plus the map's diagonal, so
    the field rises into obstacles."""
    height, width = occupancy.occupied.shape
    goal = occupancy.cell_of(goal_xy)
    distance = np.full((height, width), np.inf)
    if not occupancy.occupied[goal]:
        distance[goal] = 0.0
        queue = [(0.0, goal)]
        steps = _neighbour_steps(occupancy.resolution)
        while queue:
            d, (y, x) = heapq.heappop(queue)
            if d > distance[y, x]:
                continue
            for dy, dx, step in steps:
                ny, nx = y + dy, x + dx
                if _passable(occupancy.occupied, y, x, dy, dx) and d + step < distance[ny, nx]:
                    distance[ny, nx] = d + step
                    heapq.heappush(queue, (d + step, (ny, nx)))
    reachable = np.isfinite(distance)
    ceiling = (distance[reachable].max() if reachable.any() else 0.0) + math.hypot(height, width) * occupancy.resolution
    return np.where(reachable, distance, ceiling)


class GridField:
    """A field over an occupancy map's cells, bilinearly interpolated between cell centres (so
    differentiable in the position); points off the map take the nearest edge value."""

    def __init__(self, values: np.ndarray, occupancy: OccupancyMap):
        self.values, self.occupancy = torch.from_numpy(np.asarray(values, dtype=np.float32)), occupancy

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        """(...,) the field at points (..., 2)."""
        field = self.values.to(xy)
        height, width = field.shape
        u = ((xy[..., 0] - self.occupancy.origin[0]) / self.occupancy.resolution - 0.5).clamp(0, width - 1)
        v = ((xy[..., 1] - self.occupancy.origin[1]) / self.occupancy.resolution - 0.5).clamp(0, height - 1)
        if width == 1 or height == 1:
            return field[v.round().long(), u.round().long()]
        u0, v0 = u.detach().floor().clamp(max=width - 2).long(), v.detach().floor().clamp(max=height - 2).long()
        fu, fv = u - u0, v - v0
        top = field[v0, u0] * (1 - fu) + field[v0, u0 + 1] * fu
        bottom = field[v0 + 1, u0] * (1 - fu) + field[v0 + 1, u0 + 1] * fu
        return top * (1 - fv) + bottom * fv


class ClearanceCost:
    """cost(positions (..., T, 2)) = sum_t relu(margin - d(p_t))², d the map's signed distance,
    bilinearly interpolated (so differentiable); points off the map count as far from obstacles."""

    def __init__(self, occupancy: OccupancyMap, margin: float):
        if not (math.isfinite(margin) and margin > 0):
            raise ValueError(f"margin must be a positive number of metres, got {margin}")
        self.margin = float(margin)
        self.clearance = GridField(occupancy.signed_distance(), occupancy)

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.margin - self.clearance(xy)).pow(2).sum(-1)


class KeepOut:
    """The obstacles a plan must keep out of: the cells `occupancy` adds to `static` (the map the
    model knows; all occupied cells without one). A plan enters them when a state comes closer than
    KEEP_OFF (the robot's radius)."""

    def __init__(self, occupancy: OccupancyMap, static: OccupancyMap | None = None):
        self.obstacles = obstacle_map(occupancy, static)
        self.distance = (GridField(self.obstacles.signed_distance(), self.obstacles)
                         if self.obstacles.any_occupied else None)

    def entered(self, positions: np.ndarray) -> np.ndarray:
        """(N,) whether each plan (N, T, 2) comes closer than KEEP_OFF to an obstacle."""
        if self.distance is None:
            return np.zeros(len(positions), dtype=bool)
        distance = self.distance(torch.from_numpy(np.asarray(positions, dtype=np.float64)))
        return (distance < KEEP_OFF).any(-1).numpy()


class ObstacleCost:
    """The cost of a plan among obstacles, toward a goal: the route cost (drawn along free routes,
    weight 1) plus the clearance cost (kept `margin` off every occupied cell, weight
    `clearance_weight`). `static`: the map the model knows (its walls); the cells `occupancy` adds
    to it are the obstacles a candidate must not enter (all of them without a static map)."""

    def __init__(self, occupancy: OccupancyMap, goal_xy: Sequence[float], margin: float = 0.3,
                 clearance_weight: float = 1.0, static: OccupancyMap | None = None, keep_out: KeepOut | None = None):
        self.clearance = ClearanceCost(occupancy, margin)
        self.route = RouteCost(occupancy, goal_xy)
        self.clearance_weight = float(clearance_weight)
        self.keep_out = keep_out or KeepOut(occupancy, static)

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        return self.route(xy) + self.clearance_weight * self.clearance(xy)

    def entered(self, positions: np.ndarray) -> np.ndarray:
        """(N,) whether each plan (N, T, 2) comes closer than KEEP_OFF to an obstacle."""
        return self.keep_out.entered(positions)

    def rank(self, positions: np.ndarray) -> np.ndarray:
        """(N,) ranking costs of finished candidates (N, T, 2): their cost, raised past every clear
        one's for a candidate that enters an obstacle (the cheapest of those wins when all do)."""
        costs = self(torch.from_numpy(np.asarray(positions, dtype=np.float64))).numpy()
        return np.where(self.entered(positions), ENTERED_PENALTY + costs, costs)


def added_cells(occupancy: OccupancyMap, static: OccupancyMap | None) -> np.ndarray:
    """The occupied cells of `occupancy` that `static` (the walls the model knows, same grid) does
    not hold: the obstacles (every occupied cell without a static map)."""
    return occupancy.occupied if static is None else occupancy.occupied & ~aligned(static, occupancy)


def obstacle_map(occupancy: OccupancyMap, static: OccupancyMap | None) -> OccupancyMap:
    """The map of the obstacles alone: the cells `occupancy` adds to `static`, on `occupancy`'s grid
    (`occupancy` itself without a static map, so its distance field is computed once)."""
    if static is None:
        return occupancy
    return OccupancyMap(added_cells(occupancy, static), occupancy.resolution, occupancy.origin)


def aligned(static: OccupancyMap, occupancy: OccupancyMap) -> np.ndarray:
    """`static`'s cells on `occupancy`'s grid (they must share resolution, origin and shape)."""
    if (static.occupied.shape, static.resolution, static.origin) != (occupancy.occupied.shape, occupancy.resolution,
                                                                     occupancy.origin):
        raise ValueError("the static map and the occupancy map must share one grid")
    return static.occupied


def costmap_guide(cost, normalizer: TrajectoryNormalizer, action_dim: int,
                  position_dims: Sequence[int], weight: float) -> CostGuide:
    """The guide J = -weight * cost of the plan's positions (robot units), for the sampler; `cost`
    maps positions (..., T, 2) to (...,), e.g. an ObstacleCost."""
    columns = [action_dim + int(d) for d in position_dims]
    if len(columns) != 2:
        raise ValueError(f"an occupancy map guides 2 position columns, got {list(position_dims)}")
    return CostGuide(lambda x, t: cost(x[..., columns]), weight, normalizer)


def _edge(cells: np.ndarray) -> np.ndarray:
    """Cells of a set that touch a cell outside it (4-neighbours; the map's border counts as
    outside): the only ones that can be nearest to a point outside the set."""
    padded = np.pad(cells, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return cells & ~interior


def _nearest_distance(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest target (inf without targets), in blocks."""
    if len(targets) == 0:
        return np.full(len(points), np.inf)
    nearest = np.empty(len(points))
    for start in range(0, len(points), DISTANCE_CHUNK):
        block = points[start:start + DISTANCE_CHUNK]
        squared = ((block[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
        nearest[start:start + DISTANCE_CHUNK] = np.sqrt(squared.min(axis=1))
    return nearest


class RouteCost:
    """cost(positions (..., T, 2)) = mean_t g(p_t), g the distance to the goal through free space
    (geodesic_distance): its gradient points every planned state along a free route to the goal, so
    a plan whose route is blocked is drawn onto another one, which a local clearance penalty alone
    cannot do."""

    def __init__(self, occupancy: OccupancyMap, goal_xy: Sequence[float]):
        self.distance = GridField(geodesic_distance(occupancy, goal_xy), occupancy)

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        return self.distance(xy).mean(-1)


def _passable(occupied: np.ndarray, y: int, x: int, dy: int, dx: int) -> bool:
    """Whether a step from free cell (y, x) to its neighbour (y + dy, x + dx) stays on the map and in
    free cells; a diagonal step also needs both cells beside it free (no squeezing through a corner)."""
    height, width = occupied.shape
    ny, nx = y + dy, x + dx
    if not (0 <= ny < height and 0 <= nx < width) or occupied[ny, nx]:
        return False
    return not (dy and dx) or not (occupied[y, nx] or occupied[ny, x])


def _neighbour_steps(resolution: float) -> list[tuple[int, int, float]]:
    """The 8 neighbours of a cell as (drow, dcolumn, metres)."""
    return [(dy, dx, math.hypot(dy, dx) * resolution) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


class Route:
    """The shortest route from any point to a goal through free cells, kept `clearance` off every
    occupied cell where the goal stays reachable so: a global path, as nav2's planner server gives
    its controller. `waypoint` is the point of the route a plan of bounded reach aims at, so a detour
    longer than one plan is planned piece by piece."""

    def __init__(self, occupancy: OccupancyMap, goal_xy: Sequence[float], clearance: float = 0.0):
        self.goal = np.asarray(goal_xy, dtype=np.float64)[:2]
        roomy = occupancy.inflated(clearance) if clearance > 0 else occupancy
        if roomy.occupied[roomy.cell_of(self.goal)]:
            roomy = occupancy  # the goal itself lies within the clearance: route on the bare map
        self.occupancy, self.distance = roomy, geodesic_distance(roomy, self.goal)
        self.steps, self.centers = _neighbour_steps(roomy.resolution), roomy.cell_centers()

    def length(self, xy: Sequence[float]) -> float:
        """Metres of the route from `xy` to the goal: from the nearest cell outside the clearance."""
        return float(self.distance[self._entry(xy)])

    def _entry(self, xy: Sequence[float]) -> tuple[int, int]:
        """The cell the route starts from: `xy`'s own, or (within the clearance, where a robot often
        is) the nearest free cell, searched ring by ring."""
        cell, occupied = self.occupancy.cell_of(xy), self.occupancy.occupied
        height, width = occupied.shape
        for ring in range(max(height, width)):
            rows = range(max(cell[0] - ring, 0), min(cell[0] + ring, height - 1) + 1)
            cols = range(max(cell[1] - ring, 0), min(cell[1] + ring, width - 1) + 1)
            free = [(y, x) for y in rows for x in cols
                    if not occupied[y, x] and max(abs(y - cell[0]), abs(x - cell[1])) == ring]
            if free:
                return min(free, key=lambda c: (c[0] - cell[0]) ** 2 + (c[1] - cell[1]) ** 2)
        return cell

    def path(self, xy: Sequence[float]) -> np.ndarray:
        """(n, 2) the route's points from `xy` to the goal: `xy`, the cell centres down the geodesic
        field from its entry cell, and the goal itself."""
        cell, points = self._entry(xy), [np.asarray(xy, dtype=np.float64)[:2]]
        while True:
            nearer = self._next_cell(cell)
            if nearer is None:
                break
            cell = nearer
            points.append(self.centers[cell])
        points.append(self.goal.copy())
        return np.array(points)

    def _next_cell(self, cell: tuple[int, int]) -> tuple[int, int] | None:
        """The cheapest passable neighbour closer to the goal, or None at the goal's cell (or no way down)."""
        options = [(self.distance[cell[0] + dy, cell[1] + dx] + step, (cell[0] + dy, cell[1] + dx))
                   for dy, dx, step in self.steps if _passable(self.occupancy.occupied, *cell, dy, dx)]
        if not options:
            return None
        _, nearer = min(options)
        return nearer if self.distance[nearer] < self.distance[cell] else None

    def waypoint(self, xy: Sequence[float], reach: float) -> np.ndarray:
        """The point `reach` metres along the route from `xy` (the goal itself when it is nearer):
        from the route's entry cell down the geodesic field, cell by cell, to the cheapest neighbour."""
        cell, travelled = self._entry(xy), 0.0
        while travelled < reach:
            options = [(self.distance[cell[0] + dy, cell[1] + dx] + step, step, (cell[0] + dy, cell[1] + dx))
                       for dy, dx, step in self.steps if _passable(self.occupancy.occupied, *cell, dy, dx)]
            if not options:
                return self.goal.copy()
            _, step, nearer = min(options)
            if self.distance[nearer] >= self.distance[cell]:
                return self.goal.copy()  # the goal's cell (or no way down): aim at the goal itself
            cell, travelled = nearer, travelled + step
        return self.centers[cell]
