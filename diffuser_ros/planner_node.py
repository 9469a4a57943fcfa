"""`diffuser_planner`: the receding-horizon Diffuser loop (diffuser_core.planning.receding) as a ROS 2 node.

Subscribes to the robot's state (`odom`), `goal_pose` (RViz's "2D Goal Pose") and `costmap`, serves
the `reach_goal` action, runs the loop's planning tick at `replan_rate` Hz in its own thread and its
control tick at `control_rate` Hz in another, sends the commands on `cmd_accel` and publishes each
plan as `plan` (nav_msgs/Path), `plan_markers` (MarkerArray) and `diffuser_plan` (diffuser_ros/Plan).
What to plan and which command to send are the core loop's decisions, the same the offline
evaluation measures; this node converts messages, keeps time and threads, and guards the output:
every command is finite and clipped, and only a zero command leaves a node that is not active.

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
from pathlib import PurePath

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Path
from rclpy.action import GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from diffuser_core.checkpoint import CheckpointError
from diffuser_core.planning.loading import PlanningSettings
from diffuser_core.planning.receding import GoalRun, RecedingController
from diffuser_ros.action import ReachGoal
from diffuser_ros.adapters import RobotAdapter
from diffuser_ros.conversions import array_to_plan_msg, occupancy_grid_to_map, plan_markers, xy_to_path
from diffuser_ros.diagnostics import PlanningStats, planner_status
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.managed import ManagedPlanner, ParameterError, SlowedPlanner
from diffuser_ros.msg import Plan
from diffuser_ros.planner_parameters import PARAMETER_INFO, PARAMETERS, NodeSettings, check_parameters
from diffuser_ros.robot_messages import CommandMapping, MappingError, StateMapping, message_class
from diffuser_ros.runtime import run_node


class DiffuserPlannerNode(ManagedPlanner):
    """Receding-horizon Diffuser planner for a point robot (see the module docstring)."""

    def __init__(self, **kwargs):
        self.stopping, self.wake, self.lock, self.command_lock = (threading.Event(), threading.Event(),
                                                                  threading.Lock(), threading.RLock())
        self.worker = self.controller_thread = self.session = self.adapter = self.controller = None
        self.state: np.ndarray | None = None
        self.state_time = -math.inf
        self.stats = PlanningStats()
        super().__init__("diffuser_planner", PARAMETERS, PARAMETER_INFO, check_parameters, **kwargs)
        self.create_subscription(PoseStamped, "goal_pose", self.on_goal_pose, QoSProfile(depth=1),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.serve(ReachGoal, "reach_goal", self.execute_reach_goal, self.accept_reach_goal)
        self.start()

    # ------------------------------------------------------------------ lifecycle transitions
    def configure_robot(self) -> None:
        """Validate parameters, load the checkpoint, warm up, create the robot-side interfaces."""
        self.p = self.read_parameters()
        node, planning, loop, avoidance = check_parameters(self.p)
        self.adapter = self.make_adapter(node)
        self.planner = self.load_planner(planning)
        slowed = SlowedPlanner(self.planner, lambda: self.p["planning_delay"], self.stopping)
        sizing, choice = self.data_models(planning)
        self.controller = RecedingController(slowed, self.adapter.robot, loop, self.now, avoidance,
                                             goal_dims=self.adapter.goal_dims, sizing=sizing, choice=choice)
        self.warm_up()
        self.make_robot_interfaces()
        self.get_logger().info(f"configured: {node.checkpoint} (horizon {self.planner.horizon}, {planning.sampler}, "
                               f"device {self.planner.device})")

    def apply_live(self) -> None:
        """Live changes reach the loop and the robot's command limit from the next tick."""
        node, _, loop, avoidance = check_parameters(self.p)
        self.controller.update(loop, avoidance)
        self.adapter.set_limits(node.limits())

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the planning and control threads; accept goals."""
        with self.lock:
            self.session, self.state, self.state_time = None, None, -math.inf
        self.stopping.clear()
        self.active = True
        self.worker = threading.Thread(target=self.planning_loop, name="diffuser_planning", daemon=True)
        self.controller_thread = threading.Thread(target=self.control_loop, name="diffuser_control", daemon=True)
        self.worker.start()
        self.controller_thread.start()
        self.get_logger().info(f"active: replanning at {self.p['replan_rate']} Hz, "
                               f"commands at {self.p['control_rate']} Hz")
        return TransitionCallbackReturn.SUCCESS

    def stop(self, reason: str) -> None:
        """Refuse commands other than zero, end the running goal, stop the threads, send zero."""
        with self.command_lock:
            was_active, self.active = self.active, False
        with self.lock:
            session, self.session = self.session, None
        if session is not None:
            session.finish("aborted", reason)
        self.stopping.set()
        self.wake.set()
        for thread in (self.worker, self.controller_thread):
            if thread is not None:
                thread.join(timeout=10.0)
        self.worker = self.controller_thread = None
        if was_active:
            self.publish_command(np.zeros(self.adapter.command_dim))

    def release(self) -> None:
        super().release()
        self.adapter = self.controller = None

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def make_adapter(node: NodeSettings) -> RobotAdapter:
        """The robot as its parameters describe it: model, state and command messages, goal fields."""
        try:
            return RobotAdapter(node.robot, StateMapping(node.state_message, tuple(node.state_fields)),
                                CommandMapping(node.command_message, tuple(node.command_fields)), node.goal_fields,
                                node.frame_id, node.maze, node.limits())
        except MappingError as error:
            raise ParameterError(str(error)) from error

    def load_planner(self, planning: PlanningSettings):
        """The checkpoint's planner (hierarchical for a subgoal model), checked against the robot's state."""
        planner = self.load_planner_from_checkpoint(planning.planner_config(),
                                                    self.adapter.robot.segments(planning.segments, self.p["plan_dt"]),
                                                    self.p["low_level_checkpoint"])
        if planner.observation_dim != self.adapter.observation_dim:
            raise ParameterError(
                f"checkpoint {PurePath(self.p['checkpoint']).name} plans {planner.observation_dim}-D observations but robot "
                f"'{self.p['robot']}' has {self.adapter.observation_dim}-D state")
        return planner

    def data_models(self, planning: PlanningSettings):
        """(sizing rule, plan choice) of the models of the offline data the parameters name (None: unused);
        ParameterError naming the file when one is missing or unusable."""
        names = {"steps_to_go": planning.steps_to_go, "choice_model": planning.choice_model}
        paths = {value: self.existing_file(name, value) for name, value in names.items() if value}
        try:
            sizing = planning.horizon_sizing(paths.get).rule_for(self.planner, self.adapter.robot.position_dims)
            return sizing, planning.plan_choice(paths.get)
        except (CheckpointError, ValueError) as error:
            raise ParameterError(f"cannot use a model of the data ({', '.join(map(str, paths.values()))}): "
                                 f"{error}") from error

    def warm_up(self) -> None:
        """Throw-away plans, one alone and a batch of candidates as replans among a map make, so the
        first goal pays for no first-call allocation or compilation (the batch backend's included)."""
        state = np.zeros(self.planner.observation_dim)
        self.planner.plan(state, goal=state)
        for candidates in {self.p["candidates"], self.p["plan_candidates"]} - {1}:
            self.planner.plan(state, goal=state, candidates=candidates)
        self.planner.reset()

    def make_robot_interfaces(self) -> None:
        reliable = QoSProfile(depth=1)
        command, state = self.adapter.command_mapping, self.adapter.state_mapping
        self.command_publisher = self.create_publisher(message_class(command.type_name), command.topic, reliable)
        self.path_publisher = self.create_publisher(Path, "plan", reliable)
        self.marker_publisher = self.create_publisher(MarkerArray, "plan_markers", reliable)
        self.plan_publisher = self.create_publisher(Plan, "diffuser_plan", reliable)
        odometry = self.create_subscription(message_class(state.type_name), state.topic, self.on_state,
                                            qos_profile_sensor_data, callback_group=MutuallyExclusiveCallbackGroup())
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)  # nav2's costmap and map QoS
        costmap = self.create_subscription(OccupancyGrid, "costmap", self.on_costmap, latched,
                                           callback_group=MutuallyExclusiveCallbackGroup())
        self.robot_interfaces = ([self.command_publisher, self.path_publisher, self.marker_publisher,
                                  self.plan_publisher], [odometry, costmap])

    def diagnostic_status(self):
        """Plan latency, replan rate achieved vs requested, overruns, device, checkpoint, state age."""
        with self.lock:
            session, state_time, planner = self.session, self.state_time, self.planner
        return planner_status(f"{self.get_fully_qualified_name()}: planning", self.stats, self.now(),
                              self.p["replan_rate"], str(planner.device) if planner is not None else "none",
                              self.p["checkpoint"], self.now() - state_time, session is not None and session.active,
                              lifecycle_state=self.lifecycle_state())

    # ------------------------------------------------------------------ inputs
    def on_state(self, message) -> None:
        try:
            state = self.adapter.read_state(message)
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
        """A new costmap: the loop plans among it from the next tick (and guards commands at once)."""
        frame = message.header.frame_id
        try:
            if frame and frame.lstrip("/") != self.p["frame_id"]:
                raise ValueError(f"it is in frame '{frame}', the planner works in '{self.p['frame_id']}'")
            occupancy = occupancy_grid_to_map(message)
            self.controller.use_map(occupancy)
        except ValueError as error:
            self.get_logger().error(f"ignoring costmap: {error}", throttle_duration_sec=1.0)
            return
        self.wake.set()
        surroundings = self.controller.surroundings
        self.get_logger().info(f"costmap: {occupancy.occupied.shape[1]} x {occupancy.occupied.shape[0]} cells of "
                               f"{occupancy.resolution:g} m, {surroundings.obstacle_cells} obstacle cells"
                               f"{' beyond the maze walls' if surroundings.static is not None else ''}")

    def on_goal_pose(self, message: PoseStamped) -> None:
        if self.inactive_reason():
            self.get_logger().error(f"goal_pose refused: {self.inactive_reason()}")
            return
        check = self.adapter.check_goal(message)
        if not check.ok:
            self.get_logger().error(f"goal_pose refused: {check.reason}")
            return
        self.start_session(GoalRun(check.goal, self.p["goal_tolerance"], 0.0, started=self.now()))
        self.get_logger().info(f"goal_pose accepted: ({check.goal[0]:.2f}, {check.goal[1]:.2f})")

    def start_session(self, session: GoalRun) -> None:
        """Make `session` the current goal, preempting the previous one."""
        with self.lock:
            previous, self.session = self.session, session
        if previous is not None:
            previous.finish("preempted", "preempted by a newer goal")
        self.wake.set()

    # ------------------------------------------------------------------ planning thread
    def planning_loop(self) -> None:
        """The loop's planning tick at replan_rate; overruns are counted, not queued."""
        while not self.stopping.is_set():
            period = 1.0 / self.p["replan_rate"]
            started = self.now()
            with self.lock:
                session, state, state_time = self.session, self.state, self.state_time
            self.planning_tick(session, state, state_time)
            elapsed = self.now() - started
            if elapsed > period and session is not None and session.active:
                self.stats.overruns += 1
                self.get_logger().warning(f"plan took {elapsed * 1e3:.0f} ms > replan period {period * 1e3:.0f} ms "
                                          f"({self.stats.overruns} overruns)", throttle_duration_sec=5.0)
            self.sleep_for(period - elapsed, self.wake)
            self.wake.clear()

    def planning_tick(self, session: GoalRun | None, state, state_time: float) -> None:
        """One planning tick of the loop; a new plan is published, a planner fault aborts the goal."""
        try:
            result = self.controller.plan_tick(session, state, state_time)
        except Exception as error:  # a planner fault aborts the goal, never the node
            self.get_logger().error(f"planning failed: {error!r}")
            self.stats.failures += 1
            self.end_session(session, "aborted", f"planner error: {error}")
            return
        if result is None:
            return
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

    # ------------------------------------------------------------------ control thread
    def control_loop(self) -> None:
        """control_step at control_rate in its own thread, on a fixed schedule. Not an executor timer:
        every executor wake-up rebuilds its wait set in Python, and with state, feedback and plans
        arriving that cost ~10-30 % of the 100 Hz command rate while a plan was computed (measured)."""
        self.every_period(1.0 / self.p["control_rate"], self.guarded_control_step, self.stopping)

    def guarded_control_step(self) -> None:
        """control_step; a fault in one tick sends a zero command and does not end the control loop."""
        try:
            self.control_step()
        except Exception as error:
            self.get_logger().error(f"control step failed: {error!r}", throttle_duration_sec=1.0)
            self.publish_command(np.zeros(self.adapter.command_dim))

    def control_step(self) -> None:
        """The loop's control tick: send its command; end the goal when it says so."""
        if not self.active:  # the node was deactivated while this tick ran
            return
        with self.lock:
            session, state, state_time = self.session, self.state, self.state_time
        decision = self.controller.control(session, state, state_time)
        if decision.outcome:
            self.end_session(session, decision.outcome, decision.message)
        if decision.command is not None:
            self.publish_command(decision.command, session)

    def end_session(self, session: GoalRun, outcome: str, message: str) -> None:
        with self.command_lock:  # no tracking command of this goal can follow its zero command
            session.finish(outcome, message)
            if outcome != "succeeded":
                self.publish_command(np.zeros(self.adapter.command_dim))
        self.get_logger().info(f"goal {outcome}: {message}")

    def publish_command(self, command: np.ndarray, session: GoalRun | None = None) -> None:
        """Publish a clipped, finite command. Only a zero command gets out once the node is not active,
        or once `session` (the goal it was computed for) is no longer the one driven (it ended short of
        success, or a newer goal came)."""
        with self.command_lock:
            adapter = self.adapter
            if adapter is None:
                return
            command = adapter.robot.safe(command)
            stale = not self.active or (session is not None and (session is not self.session or
                                                                 not (session.active or session.succeeded)))
            if stale and np.any(command != 0):
                return
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
            self.command_publisher.publish(adapter.command_message(command, header))

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
        session = GoalRun(check.goal, request.tolerance or self.p["goal_tolerance"], request.timeout, started=self.now())
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

    def finish_action(self, handle, session: GoalRun) -> ReachGoal.Result:
        result = ReachGoal.Result(success=session.succeeded, replans=session.replans,
                                  final_distance=session.distance if math.isfinite(session.distance) else -1.0,
                                  message=session.message)
        if session.succeeded:
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
