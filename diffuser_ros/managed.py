"""What the package's managed (lifecycle) planner nodes share, as nav2's planners and controllers do.

Parameters declared from one table with an on-set guard (live values reach `apply_live()`), the
`/diagnostics` publisher, the goal's action server, and the lifecycle: configure =
`configure_robot()` (validate parameters, load the model, create the robot-side publishers and
subscriptions; any exception leaves the node unconfigured with the reason logged);
activate/deactivate are the subclass's; cleanup frees the model and the robot-side interfaces;
shutdown and error processing stop the robot and free everything, from any state. With the
`autostart` parameter the node configures and activates itself when it is built (`start()`), and a
failure there raises ValueError with the reason (a clean exit 2 under runtime.run_node).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from diffuser_core.checkpoint import CheckpointError
from diffuser_core.planning.loading import load_planner
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.scenario import resolve_data_path
from diffuser_ros.diagnostics import diagnostic_array
from diffuser_ros.launcher import caused_by_interrupt
from diffuser_ros.parameters import Info, ParameterGuard, declare
from diffuser_ros.runtime import freeze_startup_objects

SIM_TIME_POLL_S = 0.001  # wall-clock s between looks at a simulated clock while waiting on it


class ParameterError(ValueError):
    """An invalid node parameter or checkpoint, named in the message."""


class ManagedPlanner(LifecycleNode):
    """Declares `parameters` (name -> default) described by `info` (name -> Info); `check(values)`
    raises ValueError for an invalid set. Subclasses implement configure_robot(), on_activate(),
    stop(reason) and diagnostic_status(), call serve() for their goal's action and start() last,
    and set self.robot_interfaces = (publishers, subscriptions) and self.planner while configured."""

    def __init__(self, name: str, parameters: dict, info: dict[str, Info], check: Callable[[dict], object],
                 **kwargs):
        super().__init__(name, **kwargs)
        self.active, self.failure, self.planner = False, "", None
        self.robot_interfaces: tuple[list, list] | None = None
        self.action_server = None
        self.parameter_names, self.info, self.check = tuple(parameters), info, check
        declare(self, parameters, info)
        self.p = self.read_parameters()
        ParameterGuard(self, info, check, lambda: self.planner is not None, self.take_live_parameters)
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self.publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())

    def read_parameters(self) -> dict:
        """Every declared parameter's current value."""
        return {name: self.get_parameter(name).value for name in self.parameter_names}

    def take_live_parameters(self, values: dict) -> None:
        """Accepted changes of live parameters take effect now (the others at the next configure)."""
        if self.planner is None:
            return
        self.p.update({name: values[name] for name, info in self.info.items() if info.live})
        self.apply_live()

    def serve(self, action_type, name: str, execute, accept) -> None:
        """The goal's action server: goals checked by `accept`, run by `execute`, cancel always accepted."""
        self.action_server = ActionServer(self, action_type, name, execute_callback=execute, goal_callback=accept,
                                          cancel_callback=lambda _: CancelResponse.ACCEPT,
                                          callback_group=ReentrantCallbackGroup())

    def start(self) -> None:
        """Configure and activate now when `autostart` says so (the end of a subclass's __init__)."""
        if self.p["autostart"]:
            self.autostart()

    def publish_diagnostics(self) -> None:
        self.diagnostics_publisher.publish(diagnostic_array(self.get_clock().now().to_msg(), [self.diagnostic_status()]))

    def autostart(self) -> None:
        """Configure and activate now; ValueError with the reason if either fails."""
        for transition in (self.trigger_configure, self.trigger_activate):
            if transition() != TransitionCallbackReturn.SUCCESS:
                raise ValueError(self.failure or f"lifecycle transition {transition.__name__} failed")

    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    def now(self) -> float:
        """The node's time in seconds: the wall clock, or the simulated time on /clock under
        use_sim_time (stage timing, plan ages and control ticks all run on it)."""
        return self.get_clock().now().nanoseconds * 1e-9

    def sleep_for(self, seconds: float, interrupt: threading.Event) -> bool:
        """Wait `seconds` of the node's time, or until `interrupt` is set (then True). Under
        use_sim_time that is simulated time, however fast it runs against the wall clock."""
        if not self.get_parameter("use_sim_time").value:
            return interrupt.wait(max(0.0, seconds))
        deadline = self.now() + seconds
        while self.now() < deadline:
            if interrupt.wait(SIM_TIME_POLL_S):
                return True
        return interrupt.is_set()

    def every_period(self, period_s: float, step: Callable[[], None], stopping: threading.Event) -> None:
        """step() every `period_s` of the node's time until `stopping` is set, on a fixed schedule (a
        late tick is not made up with a burst)."""
        next_tick = self.now()
        while not stopping.is_set():
            step()
            next_tick += period_s
            now = self.now()
            if next_tick < now - period_s:
                next_tick = now
            self.sleep_for(next_tick - now, stopping)

    def inactive_reason(self) -> str:
        """Why goals are refused now ("" when the node is active)."""
        return "" if self.active else f"planner is {self.lifecycle_state()}, not active"

    def goal_response(self, action: str, problems: list[str]) -> GoalResponse:
        """Accept a goal without problems; otherwise log every reason and reject it."""
        if problems:
            self.get_logger().error(f"{action} rejected: {'; '.join(problems)}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def load_planner_from_checkpoint(self, config: PlannerConfig, segments=None, low_level: str = "") -> Planner:
        """The `checkpoint` parameter's planner on the `device` parameter (hierarchical when the
        checkpoint plans subgoals; `low_level` names a low-level checkpoint that fills them in,
        else `segments` does); ParameterError naming the file when it is missing or unusable."""
        path = self.existing_file("checkpoint", self.p["checkpoint"])
        low_level_path = self.existing_file("low_level_checkpoint", low_level) if low_level else None
        try:
            return load_planner(path, config, self.p["device"], segments=segments, low_level=low_level_path)
        except (CheckpointError, ValueError) as error:
            raise ParameterError(f"cannot use checkpoint {path}: {error}") from error

    @staticmethod
    def existing_file(name: str, value: str):
        """The path a file parameter names; ParameterError when there is no such file."""
        path = resolve_data_path(value)
        if not path.is_file():
            raise ParameterError(f"{name} '{value}' not found (looked at {path})")
        return path

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure_robot()
        except Exception as error:  # any failure leaves the node unconfigured, with the reason logged
            if caused_by_interrupt(error):  # Ctrl-C while loading (re-raised by a library): stop, not fail
                raise KeyboardInterrupt from error
            self.failure = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            self.get_logger().error(f"configure failed: {self.failure}")
            self.release()
            return TransitionCallbackReturn.FAILURE
        freeze_startup_objects()  # the model's objects too: no long GC pauses while driving
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop("planner deactivated")
        self.get_logger().info("inactive: goals are refused, the robot is stopped")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.get_logger().info("cleaned up: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop("planner shutting down")
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in a lifecycle transition from '{state.label}': stopping, freeing the model")
        self.stop("planner error")
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Destroy the robot-side interfaces and free the model (and its GPU memory)."""
        publishers, subscriptions = self.robot_interfaces or ([], [])
        for publisher in publishers:
            self.destroy_publisher(publisher)
        for subscription in subscriptions:
            self.destroy_subscription(subscription)
        self.robot_interfaces = None
        device = getattr(self.planner, "device", None)
        self.planner = None
        if device is not None and str(device).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def destroy_node(self) -> None:
        """Stop the robot, then free the node with its action server and lifecycle state machine:
        rclpy's destroy_node leaves both, and either keeps the node in the ROS graph until collected."""
        self.stop("planner shutting down")
        if getattr(self, "action_server", None) is not None:  # absent when construction failed early
            self.action_server.destroy()
        super().destroy_node()
        self._state_machine.destroy_when_not_in_use()

    def stop_safely(self) -> None:
        """Process exit (run_node): finish the lifecycle, so an active node stops its robot."""
        if self.lifecycle_state() != "finalized":
            self.trigger_shutdown()

    # ------------------------------------------------------------------ for subclasses
    def configure_robot(self) -> None:
        raise NotImplementedError

    def apply_live(self) -> None:
        """Live parameters in self.p changed while configured."""

    def diagnostic_status(self) -> DiagnosticStatus:
        raise NotImplementedError

    def stop(self, reason: str) -> None:
        raise NotImplementedError


class SlowedPlanner:
    """The planner with `delay()` s added to every plan (planning_delay: to try a slow planner); the
    wait ends early when `interrupt` is set."""

    def __init__(self, planner, delay, interrupt: threading.Event):
        self.planner, self.delay, self.interrupt = planner, delay, interrupt

    def plan(self, *args, **kwargs):
        started = time.monotonic()
        result = self.planner.plan(*args, **kwargs)
        if self.delay() > 0:
            self.interrupt.wait(self.delay())
            result.plan_time_ms = (time.monotonic() - started) * 1e3
        return result

    def __getattr__(self, name):
        return getattr(self.planner, name)
