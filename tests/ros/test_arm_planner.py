"""The arm planner (`diffuser_planner` with robot kuka_arm) over the real rclpy, beside `kuka_sim`, with a
tiny untrained 39-D model: impossible StackBlocks goals are rejected with the reason, a goal runs a
stage (feedback, a JointTrajectory within the limits that moves the arm, an honest result), cancel
sends a hold trajectory. These check the node's mechanics, not a stacking score."""
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from diffuser_core.checkpoint import CheckpointConfig, save_checkpoint
from diffuser_core.config import DiffusionConfig, UnetConfig
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.model.diffusion import build_diffusion
from diffuser_core.tasks.kuka.tasks import STATE_DIM
from diffuser_core.tasks.kuka.urdf import arm_joint_limits
from diffuser_core.tasks.kuka.world import KukaBlockWorld
from diffuser_ros.action import StackBlocks
from diffuser_ros.arm_planner_node import DiffuserArmPlannerNode
from diffuser_ros.executors import PooledExecutor
from diffuser_ros.kuka_sim_node import KukaSim
from diffuser_ros.msg import Relation

SHIPPED_GOAL = ("red", "green")  # on kuka_sim's seed-0 blocks the shipped setting stacks it (measured)


@pytest.fixture(scope="module")
def kuka_checkpoint(tmp_path_factory):
    """An untrained state-only model (H 16, 20 diffusion steps: the kuka_stack scenario's DDIM steps)
    normalized over states of several random resets."""
    with KukaBlockWorld() as world:
        states = np.stack([world.reset(seed=seed) for seed in range(8)])
    states[:, :7] += np.random.default_rng(0).uniform(-0.5, 0.5, (8, 7))
    unet, diffusion = UnetConfig(dim=8, dim_mults=(1, 2)), DiffusionConfig(n_timesteps=20, condition_on="start")
    normalizer = TrajectoryNormalizer.fit(states, np.zeros((8, 0)), "limits")
    config = CheckpointConfig("diffusion", STATE_DIM, 0, horizon=16, diffusion=diffusion, unet=unet, env="kuka-stack")
    path = tmp_path_factory.mktemp("kuka_ckpt") / "kuka_tiny.safetensors"
    return save_checkpoint(path, build_diffusion(STATE_DIM, 0, unet, diffusion), normalizer, config)


class ArmHarness:
    """The arm planner, `kuka_sim` (unless with_sim is False) and a test node with the action client."""

    def __init__(self, context, checkpoint, with_sim=True, **extra):
        values = {"autostart": True, "checkpoint": str(checkpoint), "denoising_steps": 2, "max_stages": 1,
                  "settle_time": 0.1, "threads": 1, **extra}
        self.sim = KukaSim(context=context, parameter_overrides=[Parameter("real_time_factor", value=2.0),
                                                                 Parameter("publish_rate", value=50.0)]
                           ) if with_sim else None
        self.planner = DiffuserArmPlannerNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.node = rclpy.create_node("arm_test", context=context)
        self.trajectories, self.grips, self.joint_states = [], [], []
        self.node.create_subscription(JointTrajectory, "joint_trajectory", self.trajectories.append, 10)
        self.node.create_subscription(JointTrajectory, "gripper_trajectory", self.grips.append, 10)
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.node.create_subscription(JointState, "joint_states", self.joint_states.append, 10)
        self.client = ActionClient(self.node, StackBlocks, "stack_blocks")
        self.executor = PooledExecutor(num_threads=6, context=context)
        for node in self.nodes():
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        assert self.client.wait_for_server(timeout_sec=30)  # discovery on a loaded 2-core machine
        if with_sim:
            self.wait_for(lambda: self.planner.joints is not None and self.planner.poses is not None
                          and self.joint_states)

    def nodes(self):
        return [node for node in (self.planner, self.sim, self.node) if node is not None]

    def wait_for(self, predicate, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert predicate(), "timed out"

    def send(self, task, relations, feedback=None):
        goal = StackBlocks.Goal(task=task, relations=[Relation(top=t, bottom=b) for t, b in relations])
        future = self.client.send_goal_async(goal, feedback_callback=feedback)
        self.wait_for(future.done)
        return future.result()

    def result(self, handle, timeout_s=30.0):
        future = handle.get_result_async()
        self.wait_for(future.done, timeout_s)
        return future.result()

    def close(self):
        self.executor.shutdown()
        self.client.destroy()
        for node in self.nodes():
            node.destroy_node()
        self.thread.join(timeout=5)


@pytest.fixture
def arm(ros_context, kuka_checkpoint):
    harness = ArmHarness(ros_context, kuka_checkpoint)
    yield harness
    harness.close()


@pytest.mark.parametrize("task, relations", [
    ("fly", []),                                           # unknown task
    ("rearrange", [("red", "red")]),                       # a block on itself
    ("rearrange", [("red", "purple")]),                    # unknown block name
    ("rearrange", [("red", "green"), ("green", "red")]),   # a cycle
    ("stack", [("red", "green")]),                         # 'stack' takes no relations or a full tower
])
def test_impossible_goals_are_rejected(arm, task, relations):
    assert not arm.send(task, relations).accepted


def test_a_goal_runs_a_stage_and_moves_the_arm_within_its_limits(arm):
    feedback = []
    before = np.array(arm.joint_states[-1].position)
    handle = arm.send("rearrange", [("red", "green")], feedback=feedback.append)
    assert handle.accepted
    response = arm.result(handle)
    assert response.status == GoalStatus.STATUS_ABORTED  # an untrained model does not stack
    assert response.result.replans == 1 and response.result.score == 0.0
    assert "0 of 1 relations hold after 1 plans" in response.result.message
    assert feedback and feedback[0].feedback.total == 1 and feedback[0].feedback.plan_time_ms > 0
    assert "placing red on green" in feedback[0].feedback.status
    trajectory, grip = arm.trajectories[-1], arm.grips[-1]
    names, lower, upper = arm_joint_limits()
    assert trajectory.joint_names == list(names) and len(trajectory.points) == 15
    assert grip.joint_names == ["gripper"] and len(grip.points) == 15 and grip.header.stamp == trajectory.header.stamp
    assert [p.time_from_start for p in grip.points] == [p.time_from_start for p in trajectory.points]
    positions = np.array([point.positions for point in trajectory.points])
    assert np.all(positions >= lower - 1e-9) and np.all(positions <= upper + 1e-9)
    assert np.abs(np.array(arm.joint_states[-1].position) - before).max() > 1e-3  # the arm followed it
    assert arm.sim.rejected_trajectories == 0


def test_cancel_sends_a_hold_trajectory(ros_context, kuka_checkpoint):
    arm = ArmHarness(ros_context, kuka_checkpoint, settle_time=5.0)  # a stage long enough to cancel
    try:
        handle = arm.send("rearrange", [("blue", "yellow")])
        assert handle.accepted
        arm.wait_for(lambda: arm.trajectories)
        cancel = handle.cancel_goal_async()
        arm.wait_for(cancel.done)
        response = arm.result(handle)
        assert response.status == GoalStatus.STATUS_CANCELED and "canceled" in response.result.message
        arm.wait_for(lambda: len(arm.trajectories[-1].points) == 1)
        hold = arm.trajectories[-1]
        assert "gripper" not in hold.joint_names  # the grip stays as it is
    finally:
        arm.close()


def test_the_diffuser_planner_executable_runs_the_arm_planner_for_kuka_arm():
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.planner_node", "--ros-args", "-p", "robot:=kuka_arm",
                             "-p", "autostart:=true", "-p", "checkpoint:=no_such.safetensors"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "checkpoint 'no_such.safetensors' not found" in result.stderr and "Traceback" not in result.stderr


def test_a_goal_without_arm_state_is_aborted_with_the_reason(ros_context, kuka_checkpoint):
    """No kuka_sim: no joint_states/blocks. The goal is accepted (the arm may still come up) and
    aborted with the reason; the node stays up for the next goal."""
    arm = ArmHarness(ros_context, kuka_checkpoint, with_sim=False)
    try:
        for _ in range(2):  # the first failure leaves the node able to take the next goal
            handle = arm.send("stack", [])
            assert handle.accepted
            response = arm.result(handle, timeout_s=10)
            assert response.status == GoalStatus.STATUS_ABORTED
            assert "no joint_states and blocks newer than" in response.result.message
    finally:
        arm.close()


def test_joint_states_missing_a_joint_or_non_finite_are_refused_with_the_reason():
    from diffuser_ros.conversions import joint_positions

    names, _, _ = arm_joint_limits()
    good = JointState(name=list(reversed(names)) + ["finger"], position=[0.1] * 7 + [0.0])
    assert np.allclose(joint_positions(good, names), 0.1)
    with pytest.raises(ValueError, match="lacks joints"):
        joint_positions(JointState(name=list(names[:6]), position=[0.0] * 6), names)
    with pytest.raises(ValueError, match="non-finite"):
        joint_positions(JointState(name=list(names), position=[0.0] * 6 + [float("nan")]), names)
    with pytest.raises(ValueError, match="7 names but 6 positions"):
        joint_positions(JointState(name=list(names), position=[0.0] * 6), names)


def run_send_stack_goal(*args, timeout_s=60):
    return subprocess.run([sys.executable, "-m", "diffuser_ros.send_stack_goal", *args],
                          capture_output=True, text=True, timeout=timeout_s)


def test_send_stack_goal_prints_feedback_and_the_result_and_fails_when_the_goal_fails(fresh_ros_domain, arm):
    result = run_send_stack_goal("--rearrange", "red:green")
    assert result.returncode == 1, result.stderr  # the untrained model does not stack
    assert "relations 0/1" in result.stdout and "placing red on green" in result.stdout
    assert "send_stack_goal: aborted: success=False score=0.0 stages=1" in result.stdout


def test_send_stack_goal_reports_a_rejected_goal_and_bad_arguments(fresh_ros_domain, arm):
    rejected = run_send_stack_goal("--rearrange", "red:red")
    assert rejected.returncode == 1 and "goal rejected by the planner" in rejected.stderr
    malformed = run_send_stack_goal("red-green")
    assert malformed.returncode == 2 and "a relation is TOP:BOTTOM" in malformed.stderr
    assert run_send_stack_goal("--rearrange").returncode == 2


def test_the_kuka_demo_runs_the_scenario_sends_a_goal_and_saves_a_picture(kuka_checkpoint, tmp_path, fresh_ros_domain):
    picture = tmp_path / "kuka.png"
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.demo", "--scenario", "kuka_stack", "--rearrange",
                             "red:green", "--checkpoint", str(kuka_checkpoint), "--max-stages", "1",
                             "--picture", str(picture), "--timeout", "60"],
                            capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # an untrained model does not stack
    assert "relations 0/1" in result.stdout and "placing red on green" in result.stdout, output
    assert "demo: FAILED — 0 of 1 relations hold after 1 plans" in result.stdout
    assert picture.is_file() and picture.stat().st_size > 10_000


def test_replan_every_sends_the_first_steps_of_each_plan_and_replans(ros_context, kuka_checkpoint):
    """The goal's budget is max_stages whole plans of steps (H - 1 = 15 here), as in the evaluation:
    first-4-step slices of 4 plans, the last one cut to the 3 steps left."""
    arm = ArmHarness(ros_context, kuka_checkpoint, replan_every=4, max_stages=1)
    try:
        handle = arm.send("rearrange", [("red", "green")])
        assert handle.accepted
        response = arm.result(handle)
        assert response.result.replans == 4 and "after 4 plans" in response.result.message
        plans = [t for t in arm.trajectories if len(t.points) > 1]
        assert [len(t.points) for t in plans] == [4, 4, 4, 3]
    finally:
        arm.close()


def test_the_grasp_guide_parameter_joins_the_stage_guides(ros_context, kuka_checkpoint):
    from diffuser_ros.arm_planner_node import PARAMETERS, check_parameters
    from diffuser_ros.managed import ParameterError

    with pytest.raises(ParameterError, match="grasp_guide"):
        check_parameters({**PARAMETERS, "grasp_guide": -1.0})
    arm = ArmHarness(ros_context, kuka_checkpoint, grasp_guide=50.0)
    try:
        handle = arm.send("rearrange", [("red", "green")])
        assert handle.accepted
        response = arm.result(handle)
        assert response.result.replans == 1 and arm.planner.p["grasp_guide"] == 50.0
    finally:
        arm.close()



def test_the_refine_parameter_sends_refined_plans(ros_context, kuka_checkpoint):
    """With refine on, the published plan's blocks move as the world moves them (kuka_refine): a
    block the plan never holds stays exactly where it starts, which the tiny model's raw plans do not."""
    from diffuser_core.tasks.kuka.refine import held_runs
    from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, block_slice
    from diffuser_ros.conversions import plan_msg_to_array
    from diffuser_ros.msg import Plan

    arm = ArmHarness(ros_context, kuka_checkpoint, refine=True, keep_built=True)
    plans = []
    arm.node.create_subscription(Plan, "diffuser_plan", plans.append, 10)
    try:
        response = arm.result(arm.send("rearrange", [("red", "green")]))
        assert response.result.replans == 1 and arm.planner.p["refine"] is True and arm.planner.p["keep_built"]
        arm.wait_for(lambda: plans)
        plan = plan_msg_to_array(plans[0])
        held = {run.block for run in held_runs(plan)}
        still = [i for i in range(len(BLOCK_NAMES)) if i not in held]
        assert still
        for i in still:
            position = plan[:, block_slice(i)][:, :3]
            np.testing.assert_allclose(position, np.repeat(position[:1], len(plan), 0), atol=1e-6)
        sent = [t for t in arm.trajectories if len(t.points) > 1][0]
        np.testing.assert_allclose(sent.points[4].positions[:7], plan[5, :7], atol=1e-5)  # points start at step 1
    finally:
        arm.close()


def test_the_arm_planner_module_loads_no_simulator():
    import subprocess
    import sys

    code = "import sys, diffuser_ros.arm_planner_node; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in loaded if name.split(".")[0] in ("pybullet", "pybullet_data", "mujoco")]


def test_joint_names_and_limits_come_from_the_robot_description(ros_context, kuka_checkpoint):
    from diffuser_core.tasks.kuka.urdf import load_urdf

    renamed = load_urdf().replace("lbr_iiwa_joint_", "arm_joint_")  # a real arm names its joints its own way
    arm = ArmHarness(ros_context, kuka_checkpoint, with_sim=False, robot_description=renamed)
    try:
        assert arm.planner.joint_names == tuple(f"arm_joint_{i}" for i in range(1, 8))
        assert arm.planner.upper[6] == pytest.approx(3.05432619)
    finally:
        arm.close()
    with pytest.raises(ValueError, match="moving joints"):
        ArmHarness(ros_context, kuka_checkpoint, with_sim=False, robot_description="<robot name='x'/>")


def test_every_published_arm_trajectory_names_only_the_arm_joints(ros_context, kuka_checkpoint):
    """What a ros2_control joint_trajectory_controller accepts: no joint it does not own (the grip
    goes on gripper_trajectory), for plans and for the hold a cancel sends."""
    arm = ArmHarness(ros_context, kuka_checkpoint, replan_every=5, max_stages=1, settle_time=2.0)
    try:
        handle = arm.send("stack", [])
        assert handle.accepted
        arm.wait_for(lambda: len(arm.trajectories) >= 2)
        cancel = handle.cancel_goal_async()
        arm.wait_for(cancel.done)
        arm.result(handle)
        names = list(arm_joint_limits()[0])
        assert len(arm.trajectories) >= 2 and all(t.joint_names == names for t in arm.trajectories)
        assert arm.grips and all(g.joint_names == ["gripper"] for g in arm.grips)
    finally:
        arm.close()


def test_diagnostics_report_stage_latency_state_age_device_and_checkpoint(ros_context, kuka_checkpoint):
    arm = ArmHarness(ros_context, kuka_checkpoint)
    try:
        response = arm.result(arm.send("rearrange", [("red", "green")]))
        assert response.result.replans == 1
        count = len(arm.diagnostics)
        arm.wait_for(lambda: len(arm.diagnostics) > count + 1, timeout_s=5.0)
        status = arm.diagnostics[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        assert status.name.endswith("stacking") and values["lifecycle_state"] == "active"
        assert int(values["plans"]) == 1 and float(values["plan_latency_median_ms"]) > 0
        assert values["checkpoint"] == str(kuka_checkpoint) and values["device"] == "cpu"
        assert 0 <= float(values["state_age_s"]) < 1.0 and values["stage"].startswith("no goal (last: aborted")
    finally:
        arm.close()


def test_the_shipped_checkpoint_and_settings_stack_a_block_over_ros(ros_context):
    """A guard on what ships: kuka_sim (seed 0) and the arm planner with the shipped checkpoint and
    config/kuka_stack.yaml's settings complete a relation over rclpy."""
    from diffuser_core.scenario import planner_parameters, resolve_data_path

    shipped = planner_parameters("kuka_stack")
    settings = {name: value for name, value in shipped.items() if name not in ("autostart", "checkpoint", "robot")}
    arm = ArmHarness(ros_context, resolve_data_path(shipped["checkpoint"]), **settings)
    try:
        response = arm.result(arm.send("rearrange", [SHIPPED_GOAL]), timeout_s=120.0)
        assert response.result.success, response.result.message
        assert all(t.joint_names == list(arm_joint_limits()[0]) for t in arm.trajectories)
    finally:
        arm.close()


def test_a_strided_checkpoint_sends_dense_trajectories_one_point_per_control_period(ros_context, tmp_path):
    """A model of states 4 control steps apart plans through the hierarchical planner, is refined on
    its own states and filled in: the arm gets one point per control period, as from a dense model."""
    with KukaBlockWorld() as world:
        states = np.stack([world.reset(seed=seed) for seed in range(8)])
    unet, diffusion = UnetConfig(dim=8, dim_mults=(1, 2)), DiffusionConfig(n_timesteps=20, condition_on="start")
    normalizer = TrajectoryNormalizer.fit(states, np.zeros((8, 0)), "limits")
    config = CheckpointConfig("diffusion", STATE_DIM, 0, horizon=8, diffusion=diffusion, unet=unet, env="kuka-stack",
                              stride=4)
    checkpoint = save_checkpoint(tmp_path / "strided.safetensors", build_diffusion(STATE_DIM, 0, unet, diffusion),
                                 normalizer, config)
    arm = ArmHarness(ros_context, checkpoint, refine=True)
    try:
        response = arm.result(arm.send("rearrange", [("red", "green")]))
        assert response.result.replans == 1
        trajectory = arm.trajectories[-1]
        assert len(trajectory.points) == 28 and trajectory.joint_names == list(arm_joint_limits()[0])
        steps = np.diff([p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in trajectory.points])
        assert np.allclose(steps, 1 / 24, atol=1e-6)
    finally:
        arm.close()
