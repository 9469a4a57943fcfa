"""Differentiable forward kinematics of the iiwa (matches pybullet) and the grasp guide built on it."""
import numpy as np
import pytest
import torch

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.tasks.kuka.kinematics import ArmKinematics, joint_origins
from diffuser_core.tasks.kuka.relation_guides import grasp_cost, grasp_guide, stage_guides
from diffuser_core.tasks.kuka.tasks import BLOCK_SIZE, Relation, block_slice
from diffuser_core.tasks.kuka.world import HOME_JOINTS, KukaBlockWorld


@pytest.fixture(scope="module")
def world():
    with KukaBlockWorld(seed=0) as world:
        yield world


def test_tool_positions_match_pybullet_over_the_joint_range(world):
    rng = np.random.default_rng(0)
    joints = rng.uniform(world._lower, world._upper, size=(24, 7))
    expected = np.array([world.tool_pose(q)[0] for q in joints])
    kinematics = ArmKinematics()
    got = kinematics.tool_positions(torch.tensor(joints.reshape(4, 6, 7), dtype=torch.float32))
    np.testing.assert_allclose(got.numpy().reshape(24, 3), expected, atol=1e-5)
    with pytest.raises(ValueError, match="joint angles"):
        kinematics.tool_positions(torch.zeros(3, 6))


def test_a_urdf_with_another_joint_axis_is_refused(tmp_path):
    urdf = tmp_path / "arm.urdf"
    joints = "".join(f'<joint name="j{i}" type="revolute"><origin xyz="0 0 0.1"/><axis xyz="0 0 1"/></joint>'
                     for i in range(6))
    urdf.write_text(f'<robot name="a">{joints}<joint name="j6" type="revolute"><axis xyz="1 0 0"/></joint></robot>')
    with pytest.raises(ValueError, match="z axes"):
        joint_origins(urdf)


def plan_gripping_red(world, tool_offset_m):
    """A 6-step plan whose steps 2-5 hold red, with the arm put so the tool is `tool_offset_m`
    above red's top (x: the planned states; the arm joints from the world's IK)."""
    state = world.reset(seed=3)
    red = state[block_slice(0)][:3]
    joints = world.ik(red + [0.0, 0.0, BLOCK_SIZE / 2 + tool_offset_m], seed=HOME_JOINTS)
    plan = np.repeat(state[None], 6, 0)
    plan[:, :7] = joints
    plan[2:, block_slice(0).stop - 1] = 1.0
    return plan


def test_grasp_cost_measures_the_tool_to_the_held_blocks_top_on_held_steps_only(world):
    kinematics = ArmKinematics()
    on_top = torch.tensor(plan_gripping_red(world, 0.0)[None], dtype=torch.float32)
    above = torch.tensor(plan_gripping_red(world, 0.1)[None], dtype=torch.float32)
    assert grasp_cost(on_top, kinematics, 0).item() == pytest.approx(0.0, abs=1e-7)
    assert grasp_cost(above, kinematics, 0).item() == pytest.approx(4 * 0.1 ** 2, rel=1e-3)  # 4 held steps
    released = above.clone()
    released[..., block_slice(0).stop - 1] = 0.0
    assert grasp_cost(released, kinematics, 0).item() == 0.0


def test_grasp_guide_moves_only_the_joints_toward_the_block_and_only_late_in_denoising(world):
    plan = plan_gripping_red(world, 0.1)
    identity = TrajectoryNormalizer.fit(np.stack([plan[0] - 1, plan[0] + 1]), np.zeros((2, 0)), "limits")
    guide = grasp_guide(identity, weight=1.0, below_step=10)
    x = torch.tensor(identity.normalize(plan[None]), dtype=torch.float32, requires_grad=True)
    guide(x, torch.tensor([5])).sum().backward()
    gradient = x.grad[0].numpy()
    assert np.abs(gradient[:, 7:]).max() == 0  # the blocks stay where the plan has them
    assert np.abs(gradient[:2]).max() == 0  # steps that hold nothing
    assert np.abs(gradient[2:, :7]).sum(-1).min() > 0  # every held step's joints
    stepped = torch.tensor(identity.unnormalize((x + 0.5 * x.grad).detach().numpy()), dtype=torch.float32)
    kinematics = ArmKinematics()
    assert grasp_cost(stepped, kinematics, 0) < grasp_cost(torch.tensor(plan[None], dtype=torch.float32), kinematics, 0)
    early = torch.tensor(identity.normalize(plan[None]), dtype=torch.float32, requires_grad=True)
    guide(early, torch.tensor([10])).sum().backward()
    assert early.grad.abs().max() == 0


def test_the_first_grip_steps_aim_at_where_the_block_starts(world):
    """A plan that drifts the block before the grip still sends the tool to the real block."""
    plan = plan_gripping_red(world, 0.0)
    drifted = plan.copy()
    drifted[1:, block_slice(0).start] += 0.05  # planned red 5 cm off from step 1 on
    cost = grasp_cost(torch.tensor(drifted[None], dtype=torch.float32), ArmKinematics(), 0).item()
    # steps 2-4 (the grip) aim at red's start: 0 there; step 5 (carrying) follows the drifted plan
    assert cost == pytest.approx(0.05 ** 2, rel=2e-2)


def test_stage_guides_are_the_relation_guide_and_the_weighted_grasp_guide(world):
    plan = plan_gripping_red(world, 0.1)
    identity = TrajectoryNormalizer.fit(np.stack([plan[0] - 1, plan[0] + 1]), np.zeros((2, 0)), "limits")
    target = Relation("red", "green")
    assert stage_guides(None, identity) == []  # unconditional stacking: no guide
    assert len(stage_guides(target, identity)) == 1 and len(stage_guides(target, identity, 5.0)) == 2
    (grasp,) = stage_guides(None, identity, 5.0)
    x = torch.tensor(identity.normalize(plan[None]), dtype=torch.float32)
    expected = -5.0 * grasp_cost(torch.tensor(plan[None], dtype=torch.float32), ArmKinematics(), 0)
    assert grasp(x, torch.tensor([0])).item() == pytest.approx(expected.item(), rel=1e-4)



def test_the_keep_built_guide_pushes_only_on_blocks_already_stacked(world):
    """Unconditional stacking with keep_built: holding a block that is part of a stack costs, holding a
    loose one does not; with nothing stacked there is no guide."""
    from diffuser_core.tasks.kuka.relation_guides import keep_built_guide
    from diffuser_core.tasks.kuka.tasks import BLOCK_SIZE as SIZE

    loose = world.reset(seed=3)
    identity = TrajectoryNormalizer.fit(np.stack([loose - 1, loose + 1]), np.zeros((2, 0)), "limits")
    assert keep_built_guide(loose, identity) is None
    assert stage_guides(None, identity, keep_built_state=loose) == []
    stacked = loose.copy()
    stacked[block_slice(0)][:3] = stacked[block_slice(1)][:3] + (0, 0, SIZE)  # red on green
    guide = keep_built_guide(stacked, identity)
    (same,) = stage_guides(None, identity, keep_built_state=stacked)
    plans = np.repeat(stacked[None], 3, 0)[:, None].repeat(4, 1)  # 3 plans of 4 steps
    plans[0, :, block_slice(0).stop - 1] = 1.0  # holds red (stacked)
    plans[1, :, block_slice(2).stop - 1] = 1.0  # holds blue (loose)
    x = torch.tensor(identity.normalize(plans), dtype=torch.float32)
    reward = guide(x, torch.zeros(3, dtype=torch.long))
    assert reward[0].item() == pytest.approx(-1.0) and reward[1].item() == 0.0 and reward[2].item() == 0.0
    assert torch.equal(same(x, torch.zeros(3, dtype=torch.long)), reward)
    target = Relation("blue", "red")
    assert len(stage_guides(target, identity, keep_built_state=stacked)) == 1  # only for unconditional stacking
