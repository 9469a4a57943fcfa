"""`diffuser_planner` for an arm (`robot: kuka_arm`): Kuka block stacking as a ROS 2 action server.

Subscribes to `joint_states` (sensor_msgs/JointState) and `blocks` (diffuser_ros/Blocks), serves
`stack_blocks` (diffuser_ros/action/StackBlocks) and commands the arm with `joint_trajectory`
(trajectory_msgs/JointTrajectory of the 7 arm joints, what a ros2_control joint_trajectory_controller
takes) and the grip with `gripper_trajectory` (a JointTrajectory of `gripper_joint` alone on the same
time base, for a gripper controller beside it), so a real arm is a remap away. A goal runs stage by stage with the
evaluation's stage runner (diffuser_core.tasks.kuka.stages): plan H states from the current state
(start inpainted) guided toward the next goal relation that does not hold yet, send the plan's joint
angles as one trajectory, wait for it to finish, look at the blocks, repeat until the goal holds or
`max_stages` whole plans of steps ran. Feedback after every stage: relations satisfied / total, plan
time and a status text. Joint names and limits come from the arm's URDF (`robot_description`,
`urdf_path`, or the simulated iiwa's), read without a simulator; joint targets are clipped to them; cancel, deactivate and shutdown send a hold trajectory (stay where the
arm is). A managed (lifecycle) node with `autostart`, like the point-robot planner.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from rclpy.action import GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from diffuser_core.config import resolve_device
from diffuser_core.model.backends import BACKEND_MEANING, BACKENDS
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.sampling.samplers import SAMPLER_NAMES
from diffuser_core.settings import check_settings, from_parameters, setting
from diffuser_core.tasks.kuka.kinematics import ArmKinematics
from diffuser_core.tasks.kuka.stages import Stage, StageRunner, StageSettings, grip_command, warm_up
from diffuser_core.tasks.kuka.tasks import CONTROL_DT, JOINT_COUNT, STATE_DIM, Relation, check_task, state_from_parts
from diffuser_core.tasks.kuka.urdf import arm_joints, joint_limits, load_urdf
from diffuser_ros.action import StackBlocks
from diffuser_ros.conversions import (
    array_to_plan_msg,
    block_poses,
    gripper_trajectory,
    joint_positions,
    joint_trajectory,
)
from diffuser_ros.diagnostics import PlanningStats, planner_status
from diffuser_ros.managed import ManagedPlanner, ParameterError
from diffuser_ros.msg import Blocks, Plan
from diffuser_ros.parameters import parameter_table


@dataclass(frozen=True)
class ArmNodeSettings:
    """The arm planner's parameters. Defaults are the shipped arm scenario's (config/kuka_stack.yaml; a
    test keeps them equal), except autostart: a bare node waits to be configured, as nav2's do."""

    autostart: bool = setting(False, "configure and activate on start (nav2's lifecycle-manager behaviour)")
    checkpoint: str = setting("checkpoints/kuka_stack_stride4.safetensors", "Kuka diffusion checkpoint (.safetensors)")
    robot: str = setting("kuka_arm", "kuka_arm: this arm planner (point_mass: the point planner)", read_only=True)
    frame_id: str = setting("world", "frame of the blocks' poses (the arm's base at the origin)")
    robot_description: str = setting("", "the arm's URDF (XML), for its joint names and limits; empty: read urdf_path",
                                     read_only=True)
    urdf_path: str = setting("", "a URDF file of the arm; empty: the iiwa the simulator uses", read_only=True)
    gripper_joint: str = setting("gripper", "the joint gripper_trajectory commands (1.0 grip, 0.0 release)",
                                 read_only=True)
    sampler: str = setting("ddim", "reverse process: ddim | ddpm", choices=SAMPLER_NAMES)
    denoising_steps: int = setting(20, "DDIM network calls per plan; 0: all of the model's diffusion steps", 0, 10000)
    guide_scale: float = setting(10.0, "alpha of the relation guides (mu + alpha Sigma grad J)", 0.0, live=True)
    n_guide_steps: int = setting(10, "guide gradient steps per denoising step", 0, 1000, live=True)
    grasp_guide: float = setting(200.0, "weight of the grasp guide (planned grips put the tool on the block); 0: off",
                                 0.0, live=True)
    refine: bool = setting(True, "refine each plan's joints so grips and placements are physical", live=True)
    keep_built: bool = setting(True, "unconditional stacking: push against picking up blocks already stacked",
                               live=True)
    plan_dt: float = setting(0.0, "s between plan states; 0: the demonstrations' control period (1/24 s)", 0.0, 10.0)
    max_stages: int = setting(6, "a goal's budget in whole plans (max_stages x (H - 1) steps); it ends sooner once "
                              "it holds", 1, 1000, live=True)
    samples: int = setting(1, "plans sampled per stage in one batch; the one whose own end holds most of the goal "
                           "is kept", 1, 1024, live=True)
    replan_every: int = setting(0, "0: run each plan whole; k: send a plan's first k steps, then replan",
                                0, 100000, live=True)
    settle_time: float = setting(0.5, "s to wait after a trajectory ends before looking at the blocks",
                                 0.0, 60.0, live=True)
    grip_threshold: float = setting(0.5, "a planned attached flag above this grips", 0.001, 0.999, live=True)
    state_timeout: float = setting(1.0, "s: older joint_states/blocks abort the goal", 0.001, live=True)
    device: str = setting("auto", "torch device: auto | cpu | cuda | cuda:N")
    threads: int = setting(2, "torch CPU threads for planning; 0: torch's default", 0, 1024)
    seed: int = setting(0, "seed of the planner's noise", 0, 2**31 - 1)
    backend: str = setting("auto", BACKEND_MEANING, choices=BACKENDS)

    def __post_init__(self):
        check_settings(self)
        if self.robot != "kuka_arm":
            raise ValueError(f"robot='{self.robot}' is not the arm planner's 'kuka_arm'")
        try:
            resolve_device(self.device)
        except ValueError:
            raise ValueError(f"device='{self.device}' is not auto, cpu, cuda or cuda:N") from None


PARAMETERS, PARAMETER_INFO = parameter_table(ArmNodeSettings)


def check_parameters(p: dict) -> ArmNodeSettings:
    """The parameters as ArmNodeSettings; ParameterError naming the first invalid one."""
    try:
        return from_parameters(ArmNodeSettings, p)
    except ValueError as error:
        raise ParameterError(str(error)) from error


class DiffuserArmPlannerNode(ManagedPlanner):
    """Stage-by-stage Diffuser planning for the Kuka block world (see the module docstring)."""

    def __init__(self, **kwargs):
        self.lock = threading.Lock()
        self.joints = self.poses = None
        self.held_block: str | None = None  # what the last sent trajectory ends gripping (the arm's belief)
        self.joints_time = self.poses_time = -math.inf
        self.current: threading.Event | None = None  # set to stop the running goal (preempt/deactivate)
        self.stats, self.stage = PlanningStats(), "no goal"
        self.joint_names = self.lower = self.upper = self.kinematics = None
        super().__init__("diffuser_planner", PARAMETERS, PARAMETER_INFO, check_parameters, **kwargs)
        self.serve(StackBlocks, "stack_blocks", self.execute_stack_blocks, self.accept_stack_blocks)
        self.start()

    # ------------------------------------------------------------------ lifecycle
    def configure_robot(self) -> None:
        """Validate parameters, load the checkpoint, create the arm-side interfaces."""
        self.p = self.read_parameters()
        check_parameters(self.p)
        self.joint_names, self.lower, self.upper, self.kinematics = self.read_arm()
        self.planner = self.load_planner()
        warm_up(self.planner, StageSettings.from_parameters(self.p), self.kinematics)
        self.plan_dt = self.p["plan_dt"] or CONTROL_DT
        self.trajectory_publisher = self.create_publisher(JointTrajectory, "joint_trajectory", QoSProfile(depth=1))
        self.gripper_publisher = self.create_publisher(JointTrajectory, "gripper_trajectory", QoSProfile(depth=1))
        self.plan_publisher = self.create_publisher(Plan, "diffuser_plan", QoSProfile(depth=1))
        inputs = MutuallyExclusiveCallbackGroup()
        subscriptions = [
            self.create_subscription(JointState, "joint_states", self.on_joint_states, qos_profile_sensor_data,
                                     callback_group=inputs),
            self.create_subscription(Blocks, "blocks", self.on_blocks, qos_profile_sensor_data, callback_group=inputs)]
        self.robot_interfaces = ([self.trajectory_publisher, self.gripper_publisher, self.plan_publisher], subscriptions)
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

    def read_arm(self) -> tuple:
        """Joint names, limits and kinematics from the robot description (or the URDF file, or the
        simulated iiwa's)."""
        try:
            urdf = load_urdf(self.p["robot_description"] or self.p["urdf_path"] or None)
            names, lower, upper = joint_limits(arm_joints(urdf, JOINT_COUNT))
            return names, lower, upper, ArmKinematics(urdf)
        except ValueError as error:  # URDFError, or a chain the kinematics cannot model
            raise ParameterError(str(error)) from error

    def load_planner(self) -> Planner:
        config = PlannerConfig(sampler=self.p["sampler"], denoising_steps=self.p["denoising_steps"] or None,
                               guide_scale=self.p["guide_scale"], n_guide_steps=self.p["n_guide_steps"],
                               seed=self.p["seed"], threads=self.p["threads"] or None, backend=self.p["backend"])
        planner = self.load_planner_from_checkpoint(config)
        if (planner.observation_dim, planner.action_dim) != (STATE_DIM, 0):
            raise ParameterError(f"checkpoint {PurePath(self.p['checkpoint']).name} plans {planner.observation_dim}-D observations and "
                                    f"{planner.action_dim}-D actions; the Kuka arm needs {STATE_DIM}-D states only")
        return planner

    def diagnostic_status(self):
        """Stage plan latency, plans, the stage running, state age, device and checkpoint."""
        with self.lock:
            age, goal_active = self.now() - min(self.joints_time, self.poses_time), self.current is not None
        planner = self.planner
        return planner_status(f"{self.get_fully_qualified_name()}: stacking", self.stats, self.now(), 0.0,
                              str(planner.device) if planner is not None else "none", self.p["checkpoint"],
                              age if math.isfinite(age) else -1.0, goal_active,
                              lifecycle_state=self.lifecycle_state(), extra={"stage": self.stage})

    # ------------------------------------------------------------------ state
    def on_joint_states(self, message: JointState) -> None:
        if self.joint_names is None:
            return
        try:
            joints = joint_positions(message, self.joint_names)
        except ValueError as error:
            self.get_logger().warning(f"ignoring joint_states: {error}", throttle_duration_sec=1.0)
            return
        with self.lock:
            self.joints, self.joints_time = joints, self.now()

    def on_blocks(self, message: Blocks) -> None:
        try:
            poses = block_poses(message)
        except ValueError as error:
            self.get_logger().warning(f"ignoring blocks: {error}", throttle_duration_sec=1.0)
            return
        with self.lock:
            self.poses, self.poses_time = poses, self.now()

    def arm_state(self) -> np.ndarray:
        """The 39-D state from the newest joint_states and blocks; ValueError when stale or unusable.
        The held block is the one the last sent trajectory ends gripping (none after a whole plan,
        whose stage ends with the grip open; possibly one when replanning mid-plan)."""
        with self.lock:
            joints, poses, age = self.joints, self.poses, self.now() - min(self.joints_time, self.poses_time)
        if joints is None or poses is None or age > self.p["state_timeout"]:
            raise ValueError(f"no joint_states and blocks newer than {self.p['state_timeout']} s")
        return state_from_parts(joints, poses, attached=self.held_block)

    def wait_for_arm_state(self) -> np.ndarray:
        """arm_state(), waiting up to `state_timeout` for usable state: a goal sent right after start-up
        can arrive before the arm's first joint_states and blocks."""
        deadline = self.now() + self.p["state_timeout"]
        while True:
            try:
                return self.arm_state()
            except ValueError:
                if self.now() > deadline:
                    raise
            time.sleep(0.02)

    # ------------------------------------------------------------------ commands
    def send_plan(self, stage: Stage) -> float:
        """Send the stage's joint angles (clipped to the limits) on joint_trajectory and its grips on
        gripper_trajectory, one stamp and time base for both; its duration in s. The block the
        stage ends holding (the stage runner's) is what the arm holds from then on."""
        plan_observations = stage.observations
        targets = np.clip(plan_observations[1:, :len(self.joint_names)], self.lower, self.upper)
        grips = [grip_command(state, self.p["grip_threshold"]) for state in plan_observations[1:]]
        self.held_block = stage.held
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
        self.trajectory_publisher.publish(joint_trajectory(targets, self.joint_names, self.plan_dt, header))
        self.gripper_publisher.publish(gripper_trajectory([bool(grip) for grip in grips], self.plan_dt, header,
                                                          self.p["gripper_joint"]))
        return len(targets) * self.plan_dt

    def send_hold(self) -> None:
        """Stay where the arm is (grip unchanged): the arm's 'zero command'."""
        with self.lock:
            joints = self.joints
        if joints is None or self.robot_interfaces is None or self.joint_names is None:
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"])
        self.trajectory_publisher.publish(joint_trajectory(np.clip(joints, self.lower, self.upper)[None],
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
        started, outcome, message, state = self.now(), "aborted", "", None
        runner = StageRunner(self.planner, StageSettings.from_parameters(self.p), request.task, relations,
                             self.kinematics)
        try:
            state = self.wait_for_arm_state()
            while (stage := runner.next_stage(state)) is not None:
                satisfied, total, _ = runner.progress(state)
                plan = stage.plan
                self.stats.record(plan.plan_ms, self.now())
                self.plan_publisher.publish(array_to_plan_msg(
                    plan.observations, Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p["frame_id"]),
                    plan.denoising_steps, plan.plan_ms))
                duration = self.send_plan(stage)
                settle = self.p["settle_time"] if stage.whole else 0.0  # mid-plan: go on
                status = f"stage {runner.plans}: placing {stage.target}" if stage.target else f"stage {runner.plans}: stacking"
                self.stage = status
                handle.publish_feedback(StackBlocks.Feedback(satisfied=satisfied, total=total,
                                                             plan_time_ms=plan.plan_ms, status=status))
                self.wait_for_trajectory(handle, stop, started, duration + settle)
                state = self.wait_for_arm_state()
            satisfied, total, _ = runner.progress(state)
            outcome = "succeeded" if satisfied == total else "aborted"
            message = f"{satisfied} of {total} relations hold after {runner.plans} plans"
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
        self.stage = f"no goal (last: {outcome}, {message})"
        self.get_logger().info(f"stack_blocks {outcome}: {message}")
        getattr(handle, {"succeeded": "succeed", "canceled": "canceled"}.get(outcome, "abort"))()
        value = runner.progress(state)[2] if state is not None else 0.0
        return StackBlocks.Result(success=outcome == "succeeded", score=value, replans=runner.plans, message=message)

    def wait_for_trajectory(self, handle, stop: threading.Event, started: float, seconds: float) -> None:
        """Wait while a sent trajectory runs (the node's time: simulated under use_sim_time); raises on
        cancel, preemption or the goal's timeout."""
        request = handle.request
        deadline = self.now() + seconds
        while self.now() < deadline:
            if handle.is_cancel_requested or stop.is_set():
                raise InterruptedError("canceled by the client" if handle.is_cancel_requested
                                       else "preempted by a newer goal or the planner stopped")
            if request.timeout and self.now() - started > request.timeout:
                raise TimeoutError(f"timeout after {request.timeout:.1f} s")
            self.sleep_for(min(0.02, deadline - self.now()), stop)
