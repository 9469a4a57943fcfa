"""The pybullet Kuka world: loading, reproducible resets, IK, position control and the grasp model."""
import numpy as np
import pytest

from diffuser_core.tasks.kuka.world import HOME_JOINTS, TOOL_LINK, KukaBlockWorld, KukaWorldConfig
from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, BLOCK_SIZE, STATE_DIM, on_top, poses_from_state


@pytest.fixture(scope="module")
def world():
    with KukaBlockWorld(seed=0) as world:
        yield world


def test_world_has_seven_iiwa_joints_and_four_blocks(world):
    assert world.joint_names == tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))
    assert world.block_names == BLOCK_NAMES == ("red", "green", "blue", "yellow")
    lower, upper = world.joint_limits
    assert lower.shape == upper.shape == (7,) and np.all(lower < upper)
    assert upper[0] == pytest.approx(2.96706, abs=1e-4) and upper[1] == pytest.approx(2.09440, abs=1e-4)
    state = world.reset(seed=1)
    assert state.shape == (STATE_DIM,) and np.allclose(state[:7], HOME_JOINTS)
    assert set(world.block_poses()) == set(BLOCK_NAMES)


def test_reset_is_deterministic_for_a_seed_and_differs_across_seeds(world):
    first = world.reset(seed=3)
    world.step(5)
    again = world.reset(seed=3)
    with KukaBlockWorld(seed=3) as other:
        fresh = other.state()
    assert np.array_equal(first, again) and np.array_equal(first, fresh)
    assert not np.allclose(first, world.reset(seed=4))


def test_random_starts_rest_apart_on_the_table(world):
    config = world.config
    for seed in range(5):
        poses, attached = poses_from_state(world.reset(seed=seed))
        xy = np.array([position[:2] for position, _ in poses.values()])
        assert attached == set()
        assert np.allclose([position[2] for position, _ in poses.values()], BLOCK_SIZE / 2)
        radius = np.linalg.norm(xy, axis=1)
        assert np.all((radius >= config.workspace_radius[0]) & (radius <= config.workspace_radius[1]))
        gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1)[np.triu_indices(4, 1)]
        assert gaps.min() >= config.min_block_separation


def test_given_block_positions_are_used_and_bad_ones_rejected(world):
    positions = {"red": (0.5, 0.0), "green": (0.5, 0.0, 0.075), "blue": (0.6, 0.2), "yellow": (0.6, -0.2)}
    world.reset(block_positions=positions)
    assert on_top(world, "green", "red")
    world.step(24)  # one simulated second: the two-block stack stands
    assert on_top(world, "green", "red")
    with pytest.raises(ValueError, match="exactly the blocks"):
        world.reset(block_positions={"red": (0.5, 0.0)})
    with pytest.raises(ValueError, match="shape"):
        world.reset(block_positions=np.zeros((3, 2)))


def test_ik_reaches_targets_and_position_control_tracks_them(world):
    world.reset(seed=0)
    target = np.array([0.6, 0.15, 0.2])
    joints = world.ik(target)
    assert np.linalg.norm(world.tool_pose(joints)[0] - target) < 1e-3
    assert np.allclose(world.state()[:7], HOME_JOINTS)  # IK runs on a separate copy of the arm
    world.set_joint_targets(joints)
    world.step(48)
    assert np.linalg.norm(world.tool_pose()[0] - target) < 5e-3
    with pytest.raises(ValueError, match="7 finite angles"):
        world.set_joint_targets(np.zeros(6))


def move_tool(world, target, steps=36, grip=None):
    world.set_joint_targets(world.ik(target), grip)
    return world.step(steps)


def test_grip_attaches_only_a_block_under_the_tool_and_release_drops_it(world):
    world.reset(block_positions={"red": (0.55, 0.0), "green": (0.55, 0.25), "blue": (0.6, -0.25), "yellow": (0.7, 0.0)})
    move_tool(world, [0.55, 0.1, 0.2], grip=True)  # gripping in mid-air holds nothing
    assert world.attached_block is None
    move_tool(world, [0.55, 0.0, BLOCK_SIZE + 0.005], grip=True)
    assert world.attached_block == "red"
    state = move_tool(world, [0.55, 0.0, 0.25])
    red = BLOCK_NAMES.index("red")
    assert state[7 + 8 * red + 7] == 1.0 and state[7 + 8 * red + 2] > 0.15  # held, lifted with the tool
    state = move_tool(world, [0.55, 0.0, 0.25], steps=24, grip=False)
    assert world.attached_block is None and state[7 + 8 * red + 7] == 0.0
    assert world.block_poses()["red"][0][2] == pytest.approx(BLOCK_SIZE / 2, abs=2e-3)  # fell back to the table


def test_worlds_are_independent_physics_clients():
    with KukaBlockWorld(seed=0) as first, KukaBlockWorld(seed=0) as second:
        first.set_joint_targets(first.ik([0.6, 0.2, 0.2]))
        first.step(24)
        assert np.allclose(second.state(), second.reset(seed=0))
        assert not np.allclose(first.state()[:7], second.state()[:7])
    first.close()  # closing twice is harmless


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="control_substeps"):
        KukaWorldConfig(control_substeps=0)
    with pytest.raises(ValueError, match="workspace_radius"):
        KukaWorldConfig(workspace_radius=(0.7, 0.5))
    with pytest.raises(ValueError, match="grasp_distance"):
        KukaWorldConfig(grasp_distance=0.0)
    assert KukaWorldConfig().control_dt == pytest.approx(10 / 240)


def test_grip_by_name_holds_only_that_block_and_infinite_reach_mimics_the_reference():
    positions = {"red": (0.55, 0.0), "green": (0.55, 0.2), "blue": (0.6, -0.2), "yellow": (0.7, 0.0)}
    with KukaBlockWorld(seed=0) as world:
        world.reset(block_positions=positions)
        move_tool(world, [0.55, 0.0, BLOCK_SIZE + 0.005], grip="green")
        assert world.attached_block is None  # red is under the tool, green is out of reach
        with pytest.raises(ValueError, match="unknown block"):
            world.set_joint_targets(world.joint_positions(), grip="purple")
    with KukaBlockWorld(seed=0, config=KukaWorldConfig(grasp_distance=float("inf"))) as world:
        world.reset(block_positions=positions)
        world.set_joint_targets(world.joint_positions(), grip="green")
        world.step()
        assert world.attached_block == "green"
        world.set_joint_targets(world.joint_positions(), grip="blue")
        world.step()
        assert world.attached_block == "blue"


def test_show_places_arm_and_blocks_and_render_draws_them():
    with KukaBlockWorld(seed=0) as world:
        empty_table = world.render(160, 120)
        joints = np.array(world.joint_positions()) + 0.3
        poses = {name: (np.array([0.5, 0.0, 0.025 + 0.05 * i]), np.array([0.0, 0.0, 0.0, 1.0]))
                 for i, name in enumerate(world.block_names)}  # a tower
        world.show(joints, poses)
        assert np.allclose(world.joint_positions(), joints)
        assert all(np.allclose(world.block_poses()[name][0], poses[name][0]) for name in poses)
        tower = world.render(160, 120)
    assert tower.shape == (120, 160, 3) and tower.dtype == np.uint8
    assert np.abs(tower.astype(int) - empty_table.astype(int)).sum(axis=2).astype(bool).mean() > 0.01


def test_the_reference_world_has_slabs_grips_from_anywhere_and_stops_released_blocks():
    config = KukaWorldConfig.reference()
    assert config.block_size == (0.2, 0.2, 0.06) and config.grasp_distance == float("inf") and config.stop_released
    with KukaBlockWorld(seed=0, config=config) as world:
        for seed in range(3):
            poses, _ = poses_from_state(world.reset(seed=seed))
            xy = np.array([position[:2] for position, _ in poses.values()])
            gaps = np.abs(xy[:, None] - xy[None]).max(-1) + np.eye(4)
            assert gaps.min() >= 0.2 and all(abs(position[2] - 0.03) < 1e-3 for position, _ in poses.values())
        world.reset(block_positions={"red": (0.6, 0.0, 0.25), "green": (0.6, 0.05), "blue": (0.5, 0.35),
                                     "yellow": (0.5, -0.35)})
        heights = [world.step(1)[7 + 2] for _ in range(4)]
        # Stopped every step, a released slab sinks about 1 cm per step instead of accelerating.
        assert np.allclose(np.diff(heights), np.diff(heights)[0], atol=2e-3) and -0.015 < np.diff(heights)[0] < -0.005
        world.set_joint_targets(HOME_JOINTS, grip="blue")  # far from the tool: taken all the same
        world.step(1)
        assert world.attached_block == "blue"
    with pytest.raises(ValueError, match="footprints"):
        KukaWorldConfig(block_size=(0.2, 0.2, 0.06))  # 15 cm apart would overlap 20 cm slabs


def test_the_reference_world_starts_its_blocks_on_the_references_ring_all_round_the_arm():
    """gym_stacking/env.py's load_world: each block on a 0.6 m circle round the base, its direction a
    point of [-1, 1]^2, redrawn while its box overlaps a block placed before."""
    config = KukaWorldConfig.reference()
    assert config.start_ring == 0.6 and config.tool_collides
    sector = KukaWorldConfig.reference_sector()
    assert sector.start_ring == 0.0 and not sector.tool_collides and sector.block_size == config.block_size
    behind = 0
    with KukaBlockWorld(config=config) as world:
        for seed in range(20):
            poses, _ = poses_from_state(world.reset(seed=seed))
            xy = np.array([position[:2] for position, _ in poses.values()])
            assert np.allclose(np.linalg.norm(xy, axis=1), 0.6, atol=1e-6)
            gaps = np.abs(xy[:, None] - xy[None]).max(-1) + np.eye(4)
            assert gaps.min() >= 0.2  # the footprints never overlap
            behind += int((xy[:, 0] < 0).sum())
    assert behind > 10  # all round the arm, not only in front of it


def test_the_reference_worlds_flange_collides_with_blocks_and_the_projects_does_not():
    """The reference's flange is an ordinary link that hits blocks; this project's passes through them."""
    for config, expected in ((KukaWorldConfig.reference(), True), (KukaWorldConfig(), False)):
        with KukaBlockWorld(seed=0, config=config) as world:
            sim, block = world._sim, world._blocks["red"]
            sim.resetBasePositionAndOrientation(block, np.array(world.tool_pose()[0]), (0, 0, 0, 1))
            sim.performCollisionDetection()
            contacts = sim.getContactPoints(world._robot, block, TOOL_LINK, -1)
            assert bool(contacts) == expected, (config.tool_collides, len(contacts))
