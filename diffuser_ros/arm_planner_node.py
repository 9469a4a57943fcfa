"""`diffuser_planner` for an arm (`robot: kuka_arm`): Kuka block stacking as a ROS 2 action server.

Subscribes to `joint_states` (sensor_msgs/JointState) and `blocks` (diffuser_ros/Blocks), serves
`stack_blocks` (diffuser_ros/action/StackBlocks) and commands the arm with `joint_trajectory`
(trajectory_msgs/JointTrajectory, what a ros2_control joint_trajectory_controller takes, plus the
"gripper" pseudo-joint), so a real arm is a remap away. A goal runs stage by stage, as the paper's
evaluation does: plan H states from the current state (start inpainted) guided toward the next goal
relation that does not hold yet, send the plan's joint angles as one trajectory, wait for it to
finish, look at the blocks, repeat until the goal holds or `max_stages` plans were made. Feedback
after every stage: relations satisfied / total, plan time and a status text. Joint targets are
clipped to the URDF limits; cancel, deactivate and shutdown send a hold trajectory (stay where the
arm is). A managed (lifecycle) node with `autostart`, like the point-robot planner.
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import PurePath

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from diffuser_core.envs.kuka import KukaWorldConfig, iiwa_joints
from diffuser_core.envs.kuka_eval import grip_command, next_relation, plan_stage
from diffuser_core.envs.kuka_tasks import STATE_DIM, Relation, check_task, score, state_from_parts
from diffuser_core.planner import Planner, PlannerConfig
from diffuser_ros.action import StackBlocks
from diffuser_ros.conversions import array_to_plan_msg, block_poses, joint_positions, joint_trajectory
from diffuser_ros.msg import Blocks, Plan
from diffuser_ros.managed import ManagedPlanner, ParameterError
from diffuser_ros.parameters import Info, ParameterGuard, declare

# Defaults are the shipped arm scenario's (config/kuka_stack.yaml; a test keeps them equal), except
# autostart: a bare node waits to be configured, as nav2's do.
PARAMETERS = {
    "autostart": False,
    "checkpoint": "checkpoints/kuka_stack.safetensors",
    "robot": "kuka_arm",
    "frame_id": "world",
    "sampler": "ddim",
    "denoising_steps": 20,         # DDIM network calls per plan; 0: all of the model's diffusion steps
    "guide_scale": 10.0,           # alpha of the relation guides (mu + alpha Sigma grad J)
    "n_guide_steps": 10,
    "grasp_guide": 200.0,           # weight of the grasp guide (planned grips put the tool on the block); 0: off
    "refine": True,                # refine each plan's joints so grips and placements are physical (kuka_refine)
    "keep_built": True,            # unconditional stacking: push against picking up blocks already stacked
    "plan_dt": 0.0,                # s between plan states; 0: the demonstrations' control period (1/24 s)
    "max_stages": 6,               # plans per goal before it ends with the relations that hold
    "replan_every": 0,             # 0: run each plan whole; k: send a plan's first k steps, then replan
    "settle_time": 0.5,            # s to wait after a trajectory ends before looking at the blocks
    "grip_threshold": 0.5,         # a planned attached flag above this grips
    "state_timeout": 1.0,          # s: older joint_states/blocks abort the goal
    "device": "auto",
    "threads": 2,
    "seed": 0,
}


PARAMETER_INFO = {
    "autostart": Info("configure and activate on start (nav2's lifecycle-manager behaviour)"),
    "checkpoint": Info("Kuka diffusion checkpoint (.safetensors)"),
    "robot": Info("kuka_arm: this arm planner (point_mass: the point planner)", read_only=True),
    "frame_id": Info("frame of the blocks' poses (the arm's base at the origin)"),
    "sampler": Info("reverse process: ddim | ddpm"),
    "denoising_steps": Info("DDIM network calls per plan; 0: all of the model's diffusion steps", 0, 10000),
    "guide_scale": Info("alpha of the relation guides (mu + alpha Sigma grad J)", 0.0, live=True),
    "n_guide_steps": Info("guide gradient steps per denoising step", 0, 1000, live=True),
    "grasp_guide": Info("weight of the grasp guide (planned grips put the tool on the block); 0: off", 0.0, live=True),
    "refine": Info("refine each plan's joints so grips and placements are physical", live=True),
    "keep_built": Info("unconditional stacking: push against picking up blocks already stacked", live=True),
    "plan_dt": Info("s between plan states; 0: the demonstrations' control period (1/24 s)", 0.0, 10.0),
    "max_stages": Info("plans per goal before it ends with the relations that hold", 1, 1000, live=True),
    "replan_every": Info("0: run each plan whole; k: send a plan's first k steps, then replan", 0, 100000, live=True),
    "settle_time": Info("s to wait after a trajectory ends before looking at the blocks", 0.0, 60.0, live=True),
    "grip_threshold": Info("a planned attached flag above this grips", 0.001, 0.999, live=True),
    "state_timeout": Info("s: older joint_states/blocks abort the goal", 0.001, live=True),
    "device": Info("torch device: auto | cpu | cuda | cuda:N"),
    "threads": Info("torch CPU threads for planning; 0: torch's default", 0, 1024),
    "seed": Info("seed of the planner's noise", 0, 2**31 - 1),
}


def check_parameters(p: dict) -> None:
    if p["robot"] != "kuka_arm":
        raise ParameterError(f"robot='{p['robot']}' is not the arm planner's 'kuka_arm'")
    if p["sampler"] not in ("ddim", "ddpm"):
        raise ParameterError(f"sampler='{p['sampler']}' is not one of ['ddim', 'ddpm']")
    for name in ("denoising_steps", "threads", "n_guide_steps", "replan_every"):
        if p[name] < 0:
            raise ParameterError(f"{name} must be >= 0, got {p[name]}")
    if p["max_stages"] < 1:
        raise ParameterError(f"max_stages must be >= 1, got {p['max_stages']}")
    for name in ("guide_scale", "grasp_guide", "plan_dt", "settle_time"):
        if not (math.isfinite(p[name]) and p[name] >= 0):
            raise ParameterError(f"{name} must be >= 0, got {p[name]}")
    if not (math.isfinite(p["state_timeout"]) and p["state_timeout"] > 0):
        raise ParameterError(f"state_timeout must be a positive number, got {p['state_timeout']}")
    if not 0 < p["grip_threshold"] < 1:
        raise ParameterError(f"grip_threshold must be in (0, 1), got {p['grip_threshold']}")


class DiffuserArmPlannerNode(ManagedPlanner):
    """Stage-by-stage Diffuser planning for the Kuka block world (see the module docstring)."""

    def apply_live_parameters(self, values: dict) -> None:
        """Accepted changes of live parameters take effect from the next stage."""
        if self.planner is not None:
            self.p.update({name: values[name] for name, info in PARAMETER_INFO.items() if info.live})

    def __init__(self, **kwargs):
        super().__init__("diffuser_planner", **kwargs)
        self.lock = threading.Lock()
        self.joints = self.poses = None
        self.held_block: str | None = None  # what the last sent trajectory ends gripping (the arm's belief)
        self.joints_time = self.poses_time = -math.inf
        self.current: threading.Event | None = None  # set to stop the running goal (preempt/deactivate)
        declare(self, PARAMETERS, PARAMETER_INFO)
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        ParameterGuard(self, PARAMETER_INFO, check_parameters, lambda: self.planner is not None,
                       self.apply_live_parameters)
        self.joint_names, self.lower, self.upper = iiwa_joints()
        self.action_server = ActionServer(
            self, StackBlocks, "stack_blocks", execute_callback=self.execute_stack_blocks,
            goal_callback=self.accept_stack_blocks, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        if self.p["autostart"]:
            self.autostart()

    # ------------------------------------------------------------------ lifecycle
    def configure_robot(self) -> None:
        """Validate parameters, load the checkpoint, create the arm-side interfaces."""
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        check_parameters(self.p)
        self.planner = self.load_planner()
        self.plan_dt = self.p["plan_dt"] or KukaWorldConfig().control_dt
        self.trajectory_publisher = self.create_publisher(JointTrajectory, "joint_trajectory", QoSProfile(depth=1))
        self.plan_publisher = self.create_publisher(Plan, "diffuser_plan", QoSProfile(depth=1))
        inputs = MutuallyExclusiveCallbackGroup()
        subscriptions = [
            self.create_subscription(JointState, "joint_states", self.on_joint_states, qos_profile_sensor_data,
                                     callback_group=inputs),
            self.create_subscription(Blocks, "blocks", self.on_blocks, qos_profile_sensor_data, callback_group=inputs)]
        self.robot_interfaces = ([self.trajectory_publisher, self.plan_publisher], subscriptions)
        self.get_logger().info(f"configured: {self.p['checkpoint']} (horizon {self.planner.horizon}, "
                               f"device {self.planner.device})")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        return TransitionCallbackReturn.SUCCESS

    def stop(self, reason: str) -> None:
        """No new goals; the running goal ends (its execute loop sends the hold trajectory)."""
        self.active = False
        with self.lock:
            current = self.current
        if current is not None:
            current.set()
            self.get_logger().info(f"stopping the running goal: {reason}")
            deadline = time.monotonic() + 5.0
            while self.current is current and time.monotonic() < deadline:
                time.sleep(0.01)

    def load_planner(self) -> Planner:
        config = PlannerConfig(sampler=self.p["sampler"], denoising_steps=self.p["denoising_steps"] or None,
                               guide_scale=self.p["guide_scale"], n_guide_steps=self.p["n_guide_steps"],
                               seed=self.p["seed"], threads=self.p["threads"] or None)
        planner = self.load_planner_from_checkpoint(config)
        if (planner.observation_dim, planner.action_dim) != (STATE_DIM, 0):
            raise ParameterError(f"checkpoint {PurePath(self.p['checkpoint']).name} plans {planner.observation_dim}-D observations and "
                                    f"{planner.action_dim}-D actions; the Kuka arm needs {STATE_DIM}-D states only")
        return planner

    # ------------------------------------------------------------------ state
    def on_joint_states(self, message: JointState) -> None:
        try:
            joints = joint_positions(message, self.joint_names)
        except ValueError as error:
            self.get_logger().warning(f"ignoring joint_states: {error}", throttle_duration_sec=1.0)
            return
        with self.lock:
            self.joints, self.joints_time = joints, time.monotonic()

    def on_blocks(self, message: Blocks) -> None:
        try:
            poses = block_poses(message)
        except ValueError as error:
            self.get_logger().warning(f"ignoring blocks: {error}", throttle_duration_sec=1.0)
            return
        with self.lock:
            self.poses, self.poses_time = poses, time.monotonic()

    def arm_state(self) -> np.ndarray:
        """The 39-D state from the newest joint_states and blocks; ValueError when stale or unusable.
        The held block is the one the last sent trajectory ends gripping (none after a whole plan,
        whose stage ends with the grip open; possibly one when replanning mid-plan)."""
        with self.lock:
            joints, poses, age = self.joints, self.poses, time.monotonic() - min(self.joints_time, self.poses_time)
        if joints is None or poses is None or age > self.p["state_timeout"]:
            raise ValueError(f"no joint_states and blocks newer than {self.p['state_timeout']} s")
        return state_from_parts(joints, poses, attached=self.held_block)

    def wait_for_arm_state(self) -> np.ndarray:
        """arm_state(), waiting up to `state_timeout` for usable state: a goal sent right after start-up
        can arrive before the arm's first joint_states and blocks."""
        deadline = time.monotonic() + self.p["state_timeout"]
        while True:
            try:
                return self.arm_state()
            except ValueError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    # ------------------------------------------------------------------ commands
    def send_plan(self, plan_observations: np.ndarray) -> float:
        """Send the plan's joint angles (clipped to the limits) and grips; its duration in s."""
        targets = np.clip(plan_observations[1:, :len(self.joint_names)], self.lower, self.upper)
        grips = [grip_command(state, self.p["grip_threshold"]) for state in plan_observations[1:]]
        self.held_block = grips[-1] or None
        grips = [bool(grip) for grip in grips]
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
        self.trajectory_publisher.publish(joint_trajectory(targets, grips, self.joint_names, self.plan_dt, header))
        return len(targets) * self.plan_dt

    def send_hold(self) -> None:
        """Stay where the arm is (grip unchanged): the arm's 'zero command'."""
        with self.lock:
            joints = self.joints
        if joints is None or self.robot_interfaces is None:
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
        self.trajectory_publisher.publish(joint_trajectory(np.clip(joints, self.lower, self.upper)[None], None,
                                                           self.joint_names, self.plan_dt, header))

    # ------------------------------------------------------------------ stack_blocks action
    def accept_stack_blocks(self, request: StackBlocks.Goal) -> GoalResponse:
        problems = []
        if self.inactive_reason():
            problems.append(self.inactive_reason())
        else:
            try:
                check_task(request.task, [(r.top, r.bottom) for r in request.relations])
            except ValueError as error:
                problems.append(str(error))
            if not math.isfinite(request.timeout) or request.timeout < 0:
                problems.append(f"timeout must be finite and >= 0, got {request.timeout}")
        return self.goal_response("stack_blocks", problems)

    def execute_stack_blocks(self, handle) -> StackBlocks.Result:
        request = handle.request
        relations = [Relation(r.top, r.bottom) for r in request.relations]
        stop = threading.Event()
        with self.lock:
            previous, self.current = self.current, stop
        if previous is not None:
            previous.set()  # a newer goal preempts the running one
        started, replans, plan_ms, outcome, message = time.monotonic(), 0, 0.0, "aborted", ""
        satisfied, total, value = 0, max(1, len(relations)), 0.0
        try:
            for _ in range(self.p["max_stages"]):
                state = self.wait_for_arm_state()
                satisfied, total, value = score(state, request.task, relations)
                if satisfied == total:
                    break
                target = next_relation(relations, state) if relations else None
                observations, denoising_steps, plan_ms = plan_stage(
                    self.planner, state, target, grasp_guide=self.p["grasp_guide"], keep_built=self.p["keep_built"],
                    refine=self.p["refine"], grip_threshold=self.p["grip_threshold"])
                replans += 1
                self.plan_publisher.publish(array_to_plan_msg(
                    observations, Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"]),
                    denoising_steps, plan_ms))
                steps = self.p["replan_every"] or len(observations) - 1
                duration = self.send_plan(observations[:steps + 1])
                settle = self.p["settle_time"] if steps >= len(observations) - 1 else 0.0  # mid-plan: go on
                status = f"stage {replans}: placing {target}" if target else f"stage {replans}: stacking"
                handle.publish_feedback(StackBlocks.Feedback(satisfied=satisfied, total=total,
                                                             plan_time_ms=plan_ms, status=status))
                deadline = time.monotonic() + duration + settle
                while time.monotonic() < deadline:
                    if handle.is_cancel_requested or stop.is_set():
                        raise InterruptedError("canceled by the client" if handle.is_cancel_requested
                                               else "preempted by a newer goal or the planner stopped")
                    if request.timeout and time.monotonic() - started > request.timeout:
                        raise TimeoutError(f"timeout after {request.timeout:.1f} s")
                    time.sleep(0.02)
            satisfied, total, value = score(self.wait_for_arm_state(), request.task, relations)
            outcome = "succeeded" if satisfied == total else "aborted"
            message = f"{satisfied} of {total} relations hold after {replans} plans"
        except InterruptedError as reason:
            outcome, message = ("canceled" if handle.is_cancel_requested else "aborted"), str(reason)
            self.send_hold()
        except TimeoutError as reason:
            message = str(reason)
            self.send_hold()
        except Exception as error:  # a planner or state fault aborts the goal, never the node
            message = f"planner error: {error}"
            self.get_logger().error(message)
            self.send_hold()
        finally:
            with self.lock:
                if self.current is stop:
                    self.current = None
        self.get_logger().info(f"stack_blocks {outcome}: {message}")
        getattr(handle, {"succeeded": "succeed", "canceled": "canceled"}.get(outcome, "abort"))()
        return StackBlocks.Result(success=outcome == "succeeded", score=value, replans=replans, message=message)
