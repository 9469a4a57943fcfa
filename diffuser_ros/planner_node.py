"""`diffuser_planner`: receding-horizon Diffuser planning as a ROS 2 node.

Subscribes to the robot's state (`odom`) and `goal_pose` (RViz's "2D Goal Pose"), serves the
`reach_goal` action, replans at `replan_rate` Hz in its own thread (start inpainted with the latest
state, goal inpainted at the end of the horizon), tracks the newest plan at `control_rate` Hz on
`cmd_accel`, and publishes the plan as `plan` (nav_msgs/Path), `plan_markers` (MarkerArray) and
`diffuser_plan` (diffuser_ros/Plan). Every command is finite and clipped; stale state or a stale plan
gives a zero command.

A managed (lifecycle) node, like nav2's planners and controllers: configure validates the parameters,
loads the checkpoint and makes a warm-up plan; activate starts the planning and control threads
and lets goals in; deactivate aborts the running goal, stops both and sends a zero command;
cleanup frees the model. With `autostart` true (the scenario YAMLs) the node configures and
activates itself on start; otherwise step it through the standard `change_state` service.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import AccelStamped, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from diffuser_core.avoidance import AvoidanceSettings, ObstacleAvoidance
from diffuser_core.costmap import added_cells
from diffuser_core.hierarchy import SEGMENT_FILLERS
from diffuser_core.samplers import SAMPLER_NAMES
from diffuser_core.planner import Planner, PlannerConfig
from diffuser_core.replanning import ReplanningPolicy, ReplanSettings, TimedPlan
from diffuser_ros.action import ReachGoal
from diffuser_ros.adapters import ADAPTERS
from diffuser_ros.conversions import array_to_plan_msg, occupancy_grid_to_map, plan_markers, xy_to_path
from diffuser_ros.diagnostics import PlanningStats, diagnostic_array, planner_status
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.msg import Plan
from diffuser_ros.managed import ManagedPlanner, ParameterError
from diffuser_ros.parameters import Info, ParameterGuard, declare
from diffuser_ros.runtime import run_node

# Defaults are the shipped point-robot scenario's (config/maze2d_umaze.yaml; a test keeps them equal),
# except autostart: a bare node waits to be configured, as nav2's do.
PARAMETERS = {
    "autostart": False,            # configure + activate on start (nav2's lifecycle-manager behaviour)
    "checkpoint": "checkpoints/maze2d_umaze.safetensors",
    "low_level_checkpoint": "",    # hierarchical checkpoints: a low-level model for the segments ("" = interpolate)
    "segments": "linear",          # hierarchical checkpoints without a low-level model: linear | hermite
    "robot": "point_mass",
    "maze": "umaze",               # map used to refuse goals inside walls; "" for none
    "frame_id": "map",
    "horizon": 0,                  # 0: the checkpoint's horizon
    "sampler": "ddim",             # ddim | ddpm
    "denoising_steps": 16,         # DDIM network calls for a cold plan; 0: all of the model's diffusion steps
    "warm_start": True,
    "warm_start_steps": 16,        # re-noising depth for warm starts (diffusion steps); 0: the planner's default
    "shrink_horizon": True,        # size each replan to the route that remains (diffuser_core.horizon)
    "settle_distance": 1.0,        # m: this close, a plan that arrives is kept to its end (0: never)
    "replan_rate": 10.0,           # Hz: how often the planner replans (or checks the plan)
    "replan_deviation": 0.0,       # m: 0 replans every tick; > 0 keeps a plan the robot tracks this well
    "control_rate": 100.0,         # Hz
    "plan_dt": 0.01,               # seconds between plan steps (the robot's control period in the data)
    "max_plan_age": 3.0,           # s: an older plan is not tracked (and is replanned at half this age)
    "goal_tolerance": 0.5,         # m: success radius when a goal gives 0
    "state_timeout": 0.5,          # s: older state gives zero commands
    "stale_state_grace": 2.0,      # s: a goal without fresh state for this long is aborted
    "command_limit": 1.0,
    "device": "auto",              # auto | cpu | cuda | cuda:N
    "threads": 1,                  # torch CPU threads for planning (0: torch's default)
    "seed": 0,
    "planning_delay": 0.0,         # s added to every plan: simulates a slow planner (tests, demos)
    "costmap_weight": 15.0,        # guide weight of the `costmap` obstacles (0: rank candidates, no guide)
    "candidates": 16,              # plans per replan among costmap obstacles, one batch; the cheapest clear one wins
    "costmap_margin": 0.3,         # m kept off occupied cells (cost margin and route clearance)
    "route_reach": 5.0,            # m: among obstacles, plan to the free route's point this far ahead (0: to the goal)
    "route_horizon": 180,          # plan steps of a plan to a route point (0: the planner's horizon)
    "costmap_shield": True,        # brake before the robot comes within its radius of a costmap obstacle
}


PARAMETER_INFO = {
    "autostart": Info("configure and activate on start (nav2's lifecycle-manager behaviour)"),
    "checkpoint": Info("diffusion checkpoint (.safetensors); a subgoal (stride > 1) model plans hierarchically"),
    "low_level_checkpoint": Info("hierarchical checkpoints: a low-level Diffuser for the segments between "
                                 "subgoals; empty: interpolate them"),
    "segments": Info("hierarchical checkpoints without a low-level model: how subgoals are joined, linear "
                     "(straight lines in every state entry) | hermite (curves through positions, velocities "
                     "as tangents)"),
    "robot": Info("robot adapter: point_mass (or kuka_arm, the arm planner)", read_only=True),
    "maze": Info("maze whose walls refuse goals (umaze | medium | large); empty: no map"),
    "frame_id": Info("frame of odom, goals and plans"),
    "horizon": Info("plan length in steps; 0: the checkpoint's", 0, 100000),
    "sampler": Info("reverse process: ddim | ddpm"),
    "denoising_steps": Info("DDIM network calls for a cold plan; 0: all of the model's diffusion steps", 0, 10000),
    "warm_start": Info("start replans from the shifted previous plan, re-noised (paper section 5.4)"),
    "warm_start_steps": Info("re-noising depth of a warm start, in diffusion steps; 0: the planner's default",
                             0, 10000),
    "shrink_horizon": Info("size each replan to the route that remains"),
    "settle_distance": Info("m: this close to the goal, a plan that arrives there is kept to its end", 0.0,
                            live=True),
    "replan_rate": Info("Hz: planning ticks (a replan, or a check of the plan)", 0.001, 1000.0, live=True),
    "replan_deviation": Info("m: 0 replans at every tick; > 0 keeps a plan the robot tracks this well", 0.0,
                             live=True),
    "control_rate": Info("Hz: commands on cmd_accel", 0.1, 10000.0),
    "plan_dt": Info("s between plan steps (the control period of the training data)", 1e-6, 10.0),
    "max_plan_age": Info("s: an older plan is not tracked (and is replanned at half this age)", 0.001,
                         live=True),
    "goal_tolerance": Info("m: success radius when a goal gives 0", 0.001, live=True),
    "state_timeout": Info("s: older state gives zero commands", 0.001, live=True),
    "stale_state_grace": Info("s: a goal without fresh state for this long is aborted", 0.001, live=True),
    "command_limit": Info("largest command magnitude per axis", 0.001, live=True),
    "device": Info("torch device: auto | cpu | cuda | cuda:N"),
    "threads": Info("torch CPU threads for planning; 0: torch's default", 0, 1024),
    "seed": Info("seed of the planner's noise", 0, 2**31 - 1),
    "planning_delay": Info("s added to every plan, to try a slow planner", 0.0, 60.0, live=True),
    "costmap_weight": Info("guide weight of the obstacles a `costmap` (nav_msgs/OccupancyGrid) adds to the maze: "
                           "J = -weight * cost at every denoising step; 0: rank candidates without guiding",
                           0.0, live=True),
    "candidates": Info("plans sampled in one batch per replan while the costmap has obstacles; the cheapest "
                       "that enters none is kept", 1, 256, live=True),
    "costmap_margin": Info("m kept off occupied costmap cells (cost margin and route clearance)", 0.001,
                           live=True),
    "route_reach": Info("m: among costmap obstacles, plan to the free route's point this far ahead "
                        "(0: plan to the goal)", 0.0, live=True),
    "route_horizon": Info("plan steps of a plan to a route point; 0: the planner's horizon", 0, 100000,
                          live=True),
    "costmap_shield": Info("brake the robot before it comes within its radius of a costmap obstacle, whatever "
                           "the plan it tracks says (diffuser_core.shield)", live=True),
}


def check_parameters(p: dict) -> None:
    """Raise ParameterError for the first invalid parameter."""
    if p["robot"] not in ADAPTERS:
        raise ParameterError(f"robot='{p['robot']}' is not one of {sorted(ADAPTERS)} (or 'kuka_arm', the arm planner)")
    if p["sampler"] not in SAMPLER_NAMES:
        raise ParameterError(f"sampler='{p['sampler']}' is not one of {list(SAMPLER_NAMES)}")
    if p["segments"] not in SEGMENT_FILLERS:
        raise ParameterError(f"segments='{p['segments']}' is not one of {list(SEGMENT_FILLERS)}")
    for name in ("horizon", "denoising_steps", "warm_start_steps", "threads", "route_horizon"):
        if p[name] < 0:
            raise ParameterError(f"{name} must be >= 0, got {p[name]}")
    if p["candidates"] < 1:
        raise ParameterError(f"candidates must be >= 1, got {p['candidates']}")
    for name in ("settle_distance", "replan_deviation", "planning_delay", "costmap_weight", "route_reach"):
        if not (math.isfinite(p[name]) and p[name] >= 0):
            raise ParameterError(f"{name} must be >= 0, got {p[name]}")
    for name in ("replan_rate", "control_rate", "plan_dt", "max_plan_age", "goal_tolerance",
                 "state_timeout", "stale_state_grace", "command_limit", "costmap_margin"):
        if not (math.isfinite(p[name]) and p[name] > 0):
            raise ParameterError(f"{name} must be a positive number, got {p[name]}")
    if not (p["device"] in ("auto", "cpu", "cuda") or p["device"].startswith("cuda:")):
        raise ParameterError(f"device='{p['device']}' is not auto, cpu, cuda or cuda:N")


@dataclass
class GoalSession:
    """One goal being driven to: its target, limits, progress and outcome."""

    goal: np.ndarray
    tolerance: float
    timeout: float
    started: float = 0.0  # the node's time when the goal came (its clock: wall or simulated)
    replans: int = 0
    ticks: int = 0                 # planning-loop iterations (a plan made or kept)
    plan_time_ms: float = 0.0
    distance: float = float("inf")
    outcome: str = ""              # "", "succeeded", "aborted", "canceled", "preempted"
    message: str = ""
    status: str = "waiting for the first plan"   # reported in feedback: what happens, or why not
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return not self.outcome

    def finish(self, outcome: str, message: str) -> None:
        if self.active:
            self.outcome, self.message = outcome, message
            self.done.set()


class DiffuserPlannerNode(ManagedPlanner):
    """Receding-horizon Diffuser planner for a point robot (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("diffuser_planner", **kwargs)
        self.stopping, self.wake, self.lock, self.command_lock = (threading.Event(), threading.Event(),
                                                                  threading.Lock(), threading.RLock())
        self.worker = self.controller = self.session = self.adapter = None
        self.stats = PlanningStats()
        self.costmap = None          # (OccupancyMap, static walls on its grid or None) from `costmap`
        self.costmap_changed = False
        self.cached_avoidance = (None, None)
        self.shield = None           # the keep-out shield of the costmap's obstacles (diffuser_core.shield)
        self.reset_execution()
        declare(self, PARAMETERS, PARAMETER_INFO)
        self.p = self.read_parameters()
        ParameterGuard(self, PARAMETER_INFO, check_parameters, lambda: self.planner is not None,
                       self.apply_live_parameters)
        self.make_goal_interfaces()
        if self.p["autostart"]:
            self.autostart()

    def read_parameters(self) -> dict:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def replanning_policy(self) -> ReplanningPolicy:
        """The shared replanning policy with this node's current settings."""
        return ReplanningPolicy.for_planner(self.planner, ReplanSettings.from_parameters(self.p),
                                           self.p["goal_tolerance"], self.adapter.position_dims)

    def apply_live_parameters(self, values: dict) -> None:
        """Accepted changes take effect now: the replanning policy, the adapter's limit and the
        loops read them from self.p (the others are read again at the next configure)."""
        if self.planner is None:
            return
        for name, info in PARAMETER_INFO.items():
            if info.live:
                self.p[name] = values[name]
        self.policy = self.replanning_policy()
        if self.adapter is not None:
            self.adapter.command_limit = self.p["command_limit"]

    def reset_execution(self) -> None:
        self.state: np.ndarray | None = None
        self.state_time = -math.inf
        self.plan: TimedPlan | None = None
        self.holding: np.ndarray | None = None  # goal held after success

    # ------------------------------------------------------------------ lifecycle transitions
    def configure_robot(self) -> None:
        """Validate parameters, load the checkpoint, warm up, create the robot-side interfaces."""
        self.p = self.read_parameters()
        check_parameters(self.p)
        self.adapter = ADAPTERS[self.p["robot"]](frame_id=self.p["frame_id"], maze=self.p["maze"],
                                                 command_limit=self.p["command_limit"])
        self.planner = self.load_planner()
        self.policy = self.replanning_policy()
        self.warm_up()
        self.make_robot_interfaces()
        self.get_logger().info(
            f"configured: {self.p['checkpoint']} (horizon {self.planner.horizon}, {self.p['sampler']}, "
            f"device {self.planner.device})")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the planning and control threads; accept goals."""
        with self.lock:
            self.reset_execution()
        self.stopping.clear()
        self.active = True
        self.worker = threading.Thread(target=self.planning_loop, name="diffuser_planning", daemon=True)
        self.controller = threading.Thread(target=self.control_loop, name="diffuser_control", daemon=True)
        self.worker.start()
        self.controller.start()
        self.get_logger().info(f"active: replanning at {self.p['replan_rate']} Hz, "
                               f"commands at {self.p['control_rate']} Hz")
        return TransitionCallbackReturn.SUCCESS

    def stop(self, reason: str) -> None:
        """Refuse commands other than zero, end the running goal, stop the threads, send zero."""
        with self.command_lock:
            was_active, self.active = self.active, False
        with self.lock:
            session, self.holding = self.session, None
        if session is not None:
            session.finish("aborted", reason)
        self.stopping.set()
        self.wake.set()
        for thread in (self.worker, self.controller):
            if thread is not None:
                thread.join(timeout=10.0)
        self.worker = self.controller = None
        if was_active:
            self.publish_command(np.zeros(self.adapter.command_dim))

    def release(self) -> None:
        super().release()
        self.adapter, self.costmap, self.cached_avoidance, self.shield = None, None, (None, None), None

    # ------------------------------------------------------------------ set-up
    def load_planner(self) -> Planner:
        config = PlannerConfig(
            sampler=self.p["sampler"], denoising_steps=self.p["denoising_steps"] or None,
            horizon=self.p["horizon"] or None, warm_start=self.p["warm_start"], seed=self.p["seed"],
            threads=self.p["threads"] or None,
            **({"warm_start_steps": self.p["warm_start_steps"]} if self.p["warm_start_steps"] else {}))
        planner = self.load_planner_from_checkpoint(config, self.adapter.segments(self.p["segments"], self.p["plan_dt"]),
                                                    self.p["low_level_checkpoint"])
        if planner.observation_dim != self.adapter.observation_dim:
            raise ParameterError(
                f"checkpoint {PurePath(self.p['checkpoint']).name} plans {planner.observation_dim}-D observations but robot "
                f"'{self.p['robot']}' has {self.adapter.observation_dim}-D state")
        return planner

    def warm_up(self) -> None:
        """One throw-away plan, so the first goal does not pay for first-call allocations."""
        state = np.zeros(self.planner.observation_dim)
        self.planner.plan(state, goal=state)
        self.planner.reset()

    def make_goal_interfaces(self) -> None:
        """Goal inputs and diagnostics exist in every lifecycle state: goals are refused with the
        reason until the node is active, and /diagnostics says which state it is in."""
        self.create_subscription(PoseStamped, "goal_pose", self.on_goal_pose, QoSProfile(depth=1),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self.publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
        self.action_server = ActionServer(
            self, ReachGoal, "reach_goal", execute_callback=self.execute_reach_goal,
            goal_callback=self.accept_reach_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())

    def make_robot_interfaces(self) -> None:
        reliable = QoSProfile(depth=1)
        self.command_publisher = self.create_publisher(AccelStamped, "cmd_accel", reliable)
        self.path_publisher = self.create_publisher(Path, "plan", reliable)
        self.marker_publisher = self.create_publisher(MarkerArray, "plan_markers", reliable)
        self.plan_publisher = self.create_publisher(Plan, "diffuser_plan", reliable)
        odometry = self.create_subscription(Odometry, "odom", self.on_odometry, qos_profile_sensor_data,
                                            callback_group=MutuallyExclusiveCallbackGroup())
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)  # nav2's costmap and map QoS
        costmap = self.create_subscription(OccupancyGrid, "costmap", self.on_costmap, latched,
                                           callback_group=MutuallyExclusiveCallbackGroup())
        self.robot_interfaces = ([self.command_publisher, self.path_publisher, self.marker_publisher,
                                  self.plan_publisher], [odometry, costmap])

    def publish_diagnostics(self) -> None:
        """Plan latency, replan rate achieved vs requested, overruns, device, checkpoint, state age."""
        with self.lock:
            session, state_time, planner = self.session, self.state_time, self.planner
        status = planner_status(f"{self.get_fully_qualified_name()}: planning", self.stats, self.now(), self.p["replan_rate"],
                                str(planner.device) if planner is not None else "none", self.p["checkpoint"],
                                self.now() - state_time, session is not None and session.active,
                                lifecycle_state=self.lifecycle_state())
        self.diagnostics_publisher.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    # ------------------------------------------------------------------ inputs
    def on_odometry(self, message: Odometry) -> None:
        try:
            state = self.adapter.state_from_odometry(message)
        except ValueError as error:
            self.get_logger().warning(f"ignoring state: {error}", throttle_duration_sec=1.0)
            with self.lock:
                if self.session is not None:
                    self.session.status = f"state rejected: {error}"
            return
        with self.lock:
            self.state, self.state_time = state, self.now()
            if self.session is not None and self.session.status.startswith(("state rejected", "no valid state")):
                self.session.status = "valid state again: planning"

    def on_costmap(self, message: OccupancyGrid) -> None:
        """A new costmap: the cells it adds to the maze's walls are obstacles the next plans avoid
        (the plan being tracked is replaced at the next tick)."""
        frame = message.header.frame_id
        try:
            if frame and frame.lstrip("/") != self.p["frame_id"]:
                raise ValueError(f"it is in frame '{frame}', the planner works in '{self.p['frame_id']}'")
            occupancy = occupancy_grid_to_map(message)
        except ValueError as error:
            self.get_logger().error(f"ignoring costmap: {error}", throttle_duration_sec=1.0)
            return
        static = self.adapter.static_map(occupancy)
        obstacles = int(added_cells(occupancy, static).sum())
        shield = self.adapter.shield(occupancy, static)  # at once: the plans that avoid the cells come later
        with self.lock:
            self.costmap, self.costmap_changed, self.shield = (occupancy, static), True, shield
        self.wake.set()
        self.get_logger().info(f"costmap: {occupancy.occupied.shape[1]} x {occupancy.occupied.shape[0]} cells of "
                               f"{occupancy.resolution:g} m, {obstacles} obstacle cells"
                               f"{' beyond the maze walls' if static is not None else ''}")

    def avoidance(self, goal: np.ndarray) -> ObstacleAvoidance | None:
        """The shared obstacle avoidance for the latest costmap and `goal` (built once per costmap,
        goal and settings); None without a costmap, without obstacles in it, or when it fails."""
        with self.lock:
            costmap = self.costmap
        if costmap is None:
            return None
        settings = AvoidanceSettings(self.p["costmap_weight"], self.p["candidates"], self.p["costmap_margin"],
                                     self.p["route_reach"], self.p["route_horizon"])
        key = (costmap, tuple(np.round(goal[:2], 6)), settings)
        cached_key, avoidance = self.cached_avoidance
        if cached_key is None or cached_key[0] is not costmap or cached_key[1:] != key[1:]:
            try:
                avoidance = ObstacleAvoidance(costmap[0], goal[:2], settings, static=costmap[1])
            except Exception as error:  # a costmap that cannot be planned among leaves plans unguided
                self.get_logger().error(f"costmap unusable, planning without it: {error!r}",
                                        throttle_duration_sec=5.0)
                avoidance = None
            self.cached_avoidance = (key, avoidance)
        return avoidance if avoidance is not None and avoidance.active else None

    def on_goal_pose(self, message: PoseStamped) -> None:
        if self.inactive_reason():
            self.get_logger().error(f"goal_pose refused: {self.inactive_reason()}")
            return
        check = self.adapter.check_goal(message)
        if not check.ok:
            self.get_logger().error(f"goal_pose refused: {check.reason}")
            return
        self.start_session(GoalSession(check.goal, self.p["goal_tolerance"], 0.0, started=self.now()))
        self.get_logger().info(f"goal_pose accepted: ({check.goal[0]:.2f}, {check.goal[1]:.2f})")

    def start_session(self, session: GoalSession) -> None:
        """Make `session` the current goal, preempting the previous one."""
        with self.lock:
            previous, self.session, self.plan, self.holding = self.session, session, None, None
        if previous is not None:
            previous.finish("preempted", "preempted by a newer goal")
        self.wake.set()

    # ------------------------------------------------------------------ planning thread
    def planning_loop(self) -> None:
        """Replan at replan_rate while a goal is active; count overruns instead of queueing plans."""
        last_session = None
        while not self.stopping.is_set():
            period = 1.0 / self.p["replan_rate"]
            started = self.now()
            with self.lock:
                session, state, state_time, previous = self.session, self.state, self.state_time, self.plan
            fresh = state is not None and self.now() - state_time <= self.p["state_timeout"]
            if session is not None and session.active and fresh:
                if session is not last_session:
                    self.planner.reset()
                    last_session, previous = session, None
                session.ticks += 1
                avoidance = self.avoidance(session.goal)
                target, dims = self.policy.target(state, session.goal, avoidance and avoidance.route,
                                                  self.p["route_reach"])
                with self.lock:
                    changed, self.costmap_changed = self.costmap_changed, False
                if changed or self.needs_plan(session, state, state_time, previous, target):
                    self.replan(session, state, state_time, previous, avoidance, (target, dims))
            elapsed = self.now() - started
            if elapsed > period and session is not None and session.active:
                self.stats.overruns += 1
                self.get_logger().warning(f"plan took {elapsed * 1e3:.0f} ms > replan period {period * 1e3:.0f} ms "
                                          f"({self.stats.overruns} overruns)", throttle_duration_sec=5.0)
            self.sleep_for(period - elapsed, self.wake)
            self.wake.clear()

    def needs_plan(self, session: GoalSession, state: np.ndarray, state_time: float, previous,
                   target: np.ndarray | None = None) -> bool:
        """Whether to replan now toward `target` (the goal, or a route waypoint among obstacles)
        (diffuser_core.replanning.ReplanningPolicy.needs_plan)."""
        return self.policy.needs_plan(state, state_time, session.goal if target is None else target,
                                      session.tolerance, previous)

    def replan(self, session: GoalSession, state: np.ndarray, state_time: float, previous,
               avoidance: ObstacleAvoidance | None = None, target=None) -> None:
        """Plan from `state` to `target` ((state, goal dims): a route waypoint, or the goal by
        default), among the costmap's obstacles when `avoidance` is given."""
        target, dims = target or (session.goal, None)
        executed = self.policy.executed_steps(previous, state_time)
        horizon = self.policy.target_horizon(previous, state, state_time, target, dims, self.p["route_horizon"])
        arguments = {} if avoidance is None else avoidance.planning_arguments(
            self.planner.normalizer, self.planner.action_dim, self.adapter.position_dims)
        started = time.monotonic()
        try:
            result = self.planner.plan(state, goal=target, goal_dims=dims, executed_steps=executed, horizon=horizon,
                                       **arguments)
            if self.p["planning_delay"] > 0:  # a slow planner, simulated (interrupted by deactivate)
                self.stopping.wait(self.p["planning_delay"])
                result.plan_time_ms = (time.monotonic() - started) * 1e3
        except Exception as error:  # a planner fault aborts the goal, never the node
            self.get_logger().error(f"planning failed: {error!r}")
            self.stats.failures += 1
            with self.lock:
                if self.session is session:
                    self.plan = None
            self.end_session(session, "aborted", f"planner error: {error}")  # and a zero command
            return
        with self.lock:
            if self.session is not session or not session.active:
                return
            start_time = state_time if previous is not None else self.now()
            self.plan = TimedPlan(result.observations, result.actions, state_time, start_time, target)
            session.replans += 1
            session.plan_time_ms = result.plan_time_ms
            session.status = "tracking the plan"
        self.stats.record(result.plan_time_ms, self.now())
        self.publish_plan(result, session.goal, state)
        median, p95 = self.stats.latency_ms(50), self.stats.latency_ms(95)
        self.get_logger().info(
            f"replan {session.replans}: {result.plan_time_ms:.1f} ms ({result.denoising_steps} denoising steps, "
            f"{'warm' if result.warm_started else 'cold'}); last {len(self.stats.latencies_ms)}: median {median:.1f} ms, "
            f"p95 {p95:.1f} ms; {self.stats.overruns} overruns of the {1e3 / self.p['replan_rate']:.0f} ms period; "
            f"distance {session.distance:.2f} m", throttle_duration_sec=2.0)

    def publish_plan(self, result, goal: np.ndarray, state: np.ndarray) -> None:
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
        self.path_publisher.publish(xy_to_path(result.observations[:, :2], header))
        self.marker_publisher.publish(plan_markers(result.observations[:, :2], state[:2], goal[:2], header,
                                                   subgoals_xy=None if result.subgoals is None else result.subgoals[:, :2]))
        trajectory = np.concatenate([result.actions, result.observations], axis=1)
        self.plan_publisher.publish(array_to_plan_msg(trajectory, header, result.denoising_steps, result.plan_time_ms))

    # ------------------------------------------------------------------ control loop
    def control_loop(self) -> None:
        """control_step at control_rate in its own thread, on a fixed schedule (a late tick is not
        made up with a burst). Not an executor timer: every executor wake-up rebuilds its wait set
        in Python, and with state, feedback and plans arriving that cost ~10-30 % of the 100 Hz
        command rate while a plan was being computed (measured)."""
        period = 1.0 / self.p["control_rate"]
        next_tick = self.now()
        while not self.stopping.is_set():
            try:
                self.control_step()
            except Exception as error:  # a fault in one tick must not end the control loop
                self.get_logger().error(f"control step failed: {error!r}", throttle_duration_sec=1.0)
                self.publish_command(np.zeros(self.adapter.command_dim))
            next_tick += period
            now = self.now()
            if next_tick < now - period:
                next_tick = now
            self.sleep_for(next_tick - now, self.stopping)

    def control_step(self) -> None:
        """Track the newest plan (or hold a reached goal); update the goal's outcome."""
        if not self.active:  # the node was deactivated while this tick ran
            return
        with self.lock:
            session, state, state_time, plan, holding = self.session, self.state, self.state_time, self.plan, self.holding
            shield = self.shield if self.p["costmap_shield"] else None
        now = self.now()
        fresh = state is not None and now - state_time <= self.p["state_timeout"]
        if session is None or not session.active:
            if holding is not None:  # after success: hold the goal, or stop when the state is stale
                self.publish_command(self.adapter.shielded(shield, state, self.adapter.hold_command(state, holding))
                                     if fresh else np.zeros(self.adapter.command_dim))
            return
        if not fresh:
            self.publish_command(np.zeros(self.adapter.command_dim))
            waited = min(now - state_time, now - session.started)
            if not session.status.startswith("state rejected"):
                session.status = "no valid state: holding a zero command"
            if waited > self.p["stale_state_grace"]:
                self.end_session(session, "aborted", f"no valid state for {waited:.1f} s ({session.status})")
            return
        session.distance = self.adapter.distance(state, session.goal)
        if session.distance <= session.tolerance:
            with self.lock:
                self.holding = session.goal
            self.end_session(session, "succeeded", f"reached goal within {session.tolerance:.2f} m")
            return
        if session.timeout > 0 and now - session.started > session.timeout:
            self.end_session(session, "aborted", f"timeout after {session.timeout:.1f} s")
            return
        if plan is None:
            self.publish_command(np.zeros(self.adapter.command_dim))
            return
        if self.policy.too_old(plan, now):  # too old to track: hold the goal or stop
            settled = self.policy.settling(state, session.goal, session.tolerance, plan)
            self.publish_command(self.adapter.shielded(shield, state, self.adapter.hold_command(state, session.goal))
                                 if settled else np.zeros(self.adapter.command_dim))
            return
        step = self.policy.tracking_step(plan, now)
        command = self.adapter.command(state, plan.observations, step)
        self.publish_command(self.adapter.shielded(shield, state, command), session)

    def end_session(self, session: GoalSession, outcome: str, message: str) -> None:
        with self.command_lock:  # no tracking command of this goal can follow its zero command
            session.finish(outcome, message)
            if outcome != "succeeded":
                self.publish_command(np.zeros(self.adapter.command_dim))
        self.get_logger().info(f"goal {outcome}: {message}")

    def publish_command(self, command: np.ndarray, session: GoalSession | None = None) -> None:
        """Publish a clipped, finite command. Only a zero command gets out once the node is not active,
        or once `session` (the goal a tracking command was computed for) has ended."""
        with self.command_lock:
            adapter = self.adapter
            if adapter is None:
                return
            command = adapter.safe_command(command)
            stale = not self.active or (session is not None and not session.active)
            if stale and np.any(command != 0):
                return
            message = AccelStamped(header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"]))
            message.accel.linear.x, message.accel.linear.y = float(command[0]), float(command[1])
            self.command_publisher.publish(message)

    # ------------------------------------------------------------------ reach_goal action
    def accept_reach_goal(self, request: ReachGoal.Goal) -> GoalResponse:
        if self.inactive_reason():  # no adapter to check the goal with before configure
            return self.goal_response("reach_goal", [self.inactive_reason()])
        check = self.adapter.check_goal(request.goal)
        problems = [check.reason] if not check.ok else []
        for name in ("tolerance", "timeout"):
            value = getattr(request, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be finite and >= 0, got {value}")
        return self.goal_response("reach_goal", problems)

    def execute_reach_goal(self, handle) -> ReachGoal.Result:
        request = handle.request
        check = self.adapter.check_goal(request.goal)
        session = GoalSession(check.goal, request.tolerance or self.p["goal_tolerance"], request.timeout,
                              started=self.now())
        self.start_session(session)
        self.get_logger().info(f"reach_goal: ({session.goal[0]:.2f}, {session.goal[1]:.2f}), "
                               f"tolerance {session.tolerance:.2f} m")
        reported, reported_status = 0, ""
        while not session.done.wait(timeout=0.02):
            if handle.is_cancel_requested:
                self.end_session(session, "canceled", "canceled by the client")
                break
            status = session.status
            if (session.ticks > reported and session.replans) or status != reported_status:
                reported, reported_status = session.ticks, status
                handle.publish_feedback(ReachGoal.Feedback(
                    distance_remaining=session.distance if math.isfinite(session.distance) else -1.0,
                    replans=session.replans, plan_time_ms=session.plan_time_ms, status=status))
        return self.finish_action(handle, session)

    def finish_action(self, handle, session: GoalSession) -> ReachGoal.Result:
        result = ReachGoal.Result(success=session.outcome == "succeeded", replans=session.replans,
                                  final_distance=session.distance if math.isfinite(session.distance) else -1.0,
                                  message=session.message)
        if session.outcome == "succeeded":
            handle.succeed()
        elif session.outcome == "canceled":
            handle.canceled()
        else:
            handle.abort()
        return result


def make_planner_node():
    """The planner for this process's `robot` parameter: the point-robot planner, or the arm's
    (`kuka_arm`, diffuser_ros.arm_planner_node) — one `diffuser_planner` executable for both."""
    probe = Node("diffuser_planner")
    robot = probe.declare_parameter("robot", PARAMETERS["robot"]).value
    probe.destroy_node()
    if robot == "kuka_arm":
        from diffuser_ros.arm_planner_node import DiffuserArmPlannerNode

        return DiffuserArmPlannerNode()
    return DiffuserPlannerNode()


def main(argv=None) -> int:
    # Denoising releases the GIL in every torch op; with the default 5 ms switch interval the
    # executor threads (state, control loop at 100 Hz) make each re-acquire wait, several times
    # over per plan. A short interval measured about 2x lower plan latency in this process.
    sys.setswitchinterval(0.0005)
    return run_node(make_planner_node, argv, executor_factory=lambda: PooledExecutor(num_threads=4),
                    name="diffuser_planner")


if __name__ == "__main__":
    sys.exit(main())
