"""Conversions between ROS messages and the numpy arrays diffuser_core works with."""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from diffuser_core.planar.costmap import OccupancyMap
from diffuser_ros.msg import Blocks, Plan


def seconds_parts(seconds: float) -> dict:
    """{sec, nanosec} of a non-negative time in seconds, for builtin_interfaces Time and Duration."""
    nanoseconds = round(seconds * 1e9)
    return {"sec": nanoseconds // 1_000_000_000, "nanosec": nanoseconds % 1_000_000_000}


def seconds_to_stamp(seconds: float) -> Time:
    """A builtin_interfaces/Time for a non-negative time in seconds (simulated time on /clock)."""
    return Time(**seconds_parts(seconds))


def odometry_to_state(message: Odometry) -> np.ndarray:
    """Point-mass state (x, y, vx, vy) from an Odometry message (planar robot in the odom frame)."""
    position, velocity = message.pose.pose.position, message.twist.twist.linear
    return np.array([position.x, position.y, velocity.x, velocity.y], dtype=np.float64)


def pose_to_xy(message: PoseStamped) -> np.ndarray:
    """The planar goal position of a PoseStamped."""
    return np.array([message.pose.position.x, message.pose.position.y], dtype=np.float64)


def array_to_plan_msg(plan: np.ndarray, header: Header, denoising_steps: int, plan_time_ms: float) -> Plan:
    """A (horizon, dim) array as the package's Plan message (row-major float32)."""
    plan = np.asarray(plan, dtype=np.float32)
    return Plan(header=header, horizon=plan.shape[0], dim=plan.shape[1], data=plan.ravel().tolist(),
                denoising_steps=int(denoising_steps), plan_time_ms=float(plan_time_ms))


def plan_msg_to_array(message: Plan) -> np.ndarray:
    """Inverse of array_to_plan_msg; raises ValueError if the sizes disagree."""
    data = np.asarray(message.data, dtype=np.float32)
    if data.size != message.horizon * message.dim:
        raise ValueError(f"Plan has {data.size} values, expected horizon*dim = {message.horizon * message.dim}")
    return data.reshape(message.horizon, message.dim)


def xy_to_path(xy: np.ndarray, header: Header) -> Path:
    """Planned positions as a nav_msgs/Path (orientation identity)."""
    path = Path(header=header)
    for x, y in np.asarray(xy, dtype=np.float64)[:, :2]:
        pose = PoseStamped(header=header)
        pose.pose.position.x, pose.pose.position.y = float(x), float(y)
        pose.pose.orientation.w = 1.0
        path.poses.append(pose)
    return path


def _marker(header: Header, namespace: str, kind: int, rgba: tuple, scale: float) -> Marker:
    marker = Marker(header=header, ns=namespace, id=0, type=kind, action=Marker.ADD)
    marker.scale.x = marker.scale.y = marker.scale.z = scale
    marker.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    marker.pose.orientation.w = 1.0
    marker.lifetime = Duration(sec=2)
    return marker


def plan_markers(xy: np.ndarray, start_xy: np.ndarray, goal_xy: np.ndarray | None, header: Header,
                 subgoals_xy: np.ndarray | None = None) -> MarkerArray:
    """RViz markers: the plan as a line strip with its waypoints, the start and the goal as spheres,
    and a hierarchical plan's subgoals as larger orange spheres (an empty list for a flat plan)."""
    line = _marker(header, "plan", Marker.LINE_STRIP, (0.1, 0.6, 1.0, 1.0), 0.03)
    points = _marker(header, "plan_waypoints", Marker.SPHERE_LIST, (0.1, 0.6, 1.0, 0.6), 0.05)
    for x, y in np.asarray(xy)[:, :2]:
        line.points.append(Point(x=float(x), y=float(y), z=0.05))
        points.points.append(Point(x=float(x), y=float(y), z=0.05))
    subgoals = _marker(header, "plan_subgoals", Marker.SPHERE_LIST, (1.0, 0.6, 0.1, 0.9), 0.12)
    for x, y in np.zeros((0, 2)) if subgoals_xy is None else np.asarray(subgoals_xy)[:, :2]:
        subgoals.points.append(Point(x=float(x), y=float(y), z=0.08))
    markers = [line, points, subgoals, _sphere(header, "start", start_xy, (0.1, 0.9, 0.2, 1.0))]
    if goal_xy is not None:
        markers.append(_sphere(header, "goal", goal_xy, (1.0, 0.2, 0.2, 1.0)))
    return MarkerArray(markers=markers)


def _sphere(header: Header, namespace: str, xy: np.ndarray, rgba: tuple) -> Marker:
    marker = _marker(header, namespace, Marker.SPHERE, rgba, 0.2)
    marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(xy[0]), float(xy[1]), 0.1
    return marker


def wall_markers(boxes: list[tuple[np.ndarray, np.ndarray]], header: Header, height: float = 0.3) -> MarkerArray:
    """Maze walls as one CUBE_LIST marker (each box given by its centre and half sizes)."""
    marker = _marker(header, "walls", Marker.CUBE_LIST, (0.5, 0.5, 0.55, 1.0), 1.0)
    marker.lifetime = Duration(sec=0)
    sizes = {tuple(np.round(2 * np.asarray(half), 6)) for _, half in boxes}
    if len(sizes) != 1:  # CUBE_LIST shares one scale: fall back to one CUBE per wall
        return MarkerArray(markers=[_wall_cube(header, i, c, h, height) for i, (c, h) in enumerate(boxes)])
    (size_x, size_y), = sizes
    marker.scale.x, marker.scale.y, marker.scale.z = size_x, size_y, height
    for center, _ in boxes:
        marker.points.append(Point(x=float(center[0]), y=float(center[1]), z=height / 2))
    return MarkerArray(markers=[marker])


def _wall_cube(header: Header, index: int, center, half, height: float) -> Marker:
    marker = _marker(header, "walls", Marker.CUBE, (0.5, 0.5, 0.55, 1.0), 1.0)
    marker.id, marker.lifetime = index, Duration(sec=0)
    marker.scale.x, marker.scale.y, marker.scale.z = 2 * float(half[0]), 2 * float(half[1]), height
    marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(center[0]), float(center[1]), height / 2
    return marker


def is_finite_pose(message: PoseStamped) -> bool:
    """True when every position and orientation value of the pose is finite."""
    p, q = message.pose.position, message.pose.orientation
    return all(math.isfinite(v) for v in (p.x, p.y, p.z, q.x, q.y, q.z, q.w))


# ---- arm ---------------------------------------------------------------------------------------
def joint_positions(message: JointState, joint_names) -> np.ndarray:
    """The positions of `joint_names`, in that order, from a JointState (any order, extra joints
    ignored); ValueError when a joint is missing or a position is not finite."""
    index = {name: i for i, name in enumerate(message.name)}
    missing = [name for name in joint_names if name not in index]
    if missing:
        raise ValueError(f"joint_states lacks joints {missing}")
    if len(message.position) != len(message.name):
        raise ValueError(f"joint_states has {len(message.name)} names but {len(message.position)} positions")
    positions = np.array([message.position[index[name]] for name in joint_names], dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise ValueError(f"joint_states has non-finite positions {positions.tolist()}")
    return positions


def block_poses(message: Blocks) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Block name -> (position, quaternion xyzw) from a Blocks message."""
    if len(message.names) != len(message.poses):
        raise ValueError(f"blocks has {len(message.names)} names but {len(message.poses)} poses")
    return {name: (np.array([p.position.x, p.position.y, p.position.z]),
                   np.array([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w]))
            for name, p in zip(message.names, message.poses)}


def joint_trajectory(positions: np.ndarray, joint_names, dt: float, header: Header) -> JointTrajectory:
    """A JointTrajectory of the named joints with one point per row of `positions` (P, n_joints) at
    dt, 2 dt, ... (what a ros2_control joint_trajectory_controller takes)."""
    message = JointTrajectory(header=header, joint_names=list(joint_names))
    for index, row in enumerate(np.asarray(positions, dtype=np.float64)):
        message.points.append(JointTrajectoryPoint(positions=row.tolist(),
                                                   time_from_start=Duration(**seconds_parts((index + 1) * dt))))
    return message


def gripper_trajectory(grips, dt: float, header: Header, gripper_joint: str = "gripper") -> JointTrajectory:
    """The grip over the same points (1.0 = grip, 0.0 = release) as a JointTrajectory of the gripper
    joint alone, for a gripper controller beside the arm's."""
    return joint_trajectory(np.array([[1.0 if grip else 0.0] for grip in grips]).reshape(-1, 1),
                            [gripper_joint], dt, header)


OCCUPIED_THRESHOLD = 65  # nav2 map_server's occupied_thresh (0.65): a cell this likely occupied is an obstacle


def occupancy_grid_to_map(message: OccupancyGrid) -> OccupancyMap:
    """An OccupancyGrid as an OccupancyMap: cells at or above OCCUPIED_THRESHOLD are occupied,
    free and unknown (-1) cells are not. ValueError for a grid that cannot be a map (a size that
    does not match the data, a non-positive resolution, a rotated or non-finite origin)."""
    info = message.info
    width, height, data = int(info.width), int(info.height), np.asarray(message.data, dtype=np.int16)
    if width * height == 0 or data.size != width * height:
        raise ValueError(f"costmap of {width} x {height} cells carries {data.size} values")
    origin, rotation = info.origin.position, info.origin.orientation
    if abs(rotation.x) + abs(rotation.y) + abs(rotation.z) > 1e-6 or abs(abs(rotation.w) - 1.0) > 1e-6:
        raise ValueError("costmap origin is rotated; only grids aligned with their frame are supported")
    return OccupancyMap(data.reshape(height, width) >= OCCUPIED_THRESHOLD, float(info.resolution),
                        (float(origin.x), float(origin.y)))


def occupancy_map_to_grid(occupancy: OccupancyMap, header: Header) -> OccupancyGrid:
    """An OccupancyMap as an OccupancyGrid (occupied 100, free 0), row-major from its origin."""
    message = OccupancyGrid(header=header)
    message.info.map_load_time = header.stamp
    message.info.resolution = float(occupancy.resolution)
    message.info.height, message.info.width = (int(n) for n in occupancy.occupied.shape)
    message.info.origin.position.x, message.info.origin.position.y = occupancy.origin
    message.info.origin.orientation.w = 1.0
    message.data = (occupancy.occupied.astype(np.int8) * 100).reshape(-1).tolist()
    return message
