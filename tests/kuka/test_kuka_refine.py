"""Physical refinement of sampled Kuka plans (kuka_refine): holds read from the attached flags, blocks
moved as the world moves them, and a scripted stage whose joints were knocked off course refined
back into one that, executed in the world, grips and stacks."""
import numpy as np
import pybullet
import pytest
import torch

from diffuser_core.tasks.kuka.world import HOME_JOINTS, KukaBlockWorld
from diffuser_core.tasks.kuka.demos import demonstrate
from diffuser_core.tasks.kuka.evaluation import execute_plan
from diffuser_core.tasks.kuka.kinematics import ArmKinematics
from diffuser_core.tasks.kuka.refine import (HeldRun, RefineConfig, block_paths, held_runs, hold_length,
                                            intended_relation, refine_plan)
from diffuser_core.tasks.kuka.tasks import BLOCK_SIZE, STATE_DIM, Relation, block_slice, on_top, relations_from_order

SEED = 11
ORDER = ["red", "green", "blue", "yellow"]  # bottom to top: the first stage puts green on red


@pytest.fixture(scope="module")
def world():
    with KukaBlockWorld(seed=0) as world:
        yield world


@pytest.fixture(scope="module")
def stage(world):
    """The scripted demonstration's first stage (128 states: pick green, put it on red)."""
    episode = demonstrate(world, "stack", relations_from_order(ORDER), seed=SEED)
    return episode.observations[:128].astype(np.float64)


def with_flags(holds: dict[int, range], horizon: int = 20) -> np.ndarray:
    plan = np.zeros((horizon, STATE_DIM))
    for block, steps in holds.items():
        plan[list(steps), block_slice(block).stop - 1] = 0.9
    return plan


def test_held_runs_follow_the_highest_flag_above_the_threshold():
    plan = with_flags({0: range(3, 8), 2: range(8, 10)})
    plan[12, block_slice(1).stop - 1] = 0.4  # below the threshold: not a hold
    assert held_runs(plan) == [HeldRun(0, 3, 7), HeldRun(2, 8, 9)]
    assert held_runs(plan, threshold=0.3) == [HeldRun(0, 3, 7), HeldRun(2, 8, 9), HeldRun(1, 12, 12)]
    assert hold_length(plan) == 5 and hold_length(plan, "blue") == 2 and hold_length(plan, "yellow") == 0
    held_to_the_end = with_flags({0: range(3, 20)})
    assert hold_length(held_to_the_end) == 0  # never released: not a pick-and-place


def test_block_paths_move_a_block_only_while_it_is_held():
    tool = torch.arange(10, dtype=torch.float32).unsqueeze(1) * torch.tensor([0.1, 0.0, 0.0])
    tool = tool + torch.tensor([0.0, 0.0, 0.5])
    start = torch.tensor([[0.3, 0.0, 0.025], [0.0, 0.4, 0.025]])
    paths = block_paths(tool, start, [HeldRun(0, 3, 5)], release_gap=0.003)
    np.testing.assert_allclose(paths[:3, 0].numpy(), np.repeat(start[:1].numpy(), 3, 0))
    np.testing.assert_allclose(paths[3:6, 0].numpy(), (tool[3:6] - torch.tensor([0, 0, BLOCK_SIZE / 2])).numpy())
    released = tool[5] - torch.tensor([0, 0, BLOCK_SIZE / 2 + 0.003])
    np.testing.assert_allclose(paths[6:, 0].numpy(), np.repeat(released[None].numpy(), 4, 0), atol=1e-7)
    np.testing.assert_allclose(paths[:, 1].numpy(), np.repeat(start[1:].numpy(), 10, 0))


def test_tool_orientation_matches_pybullet(world):
    kinematics = ArmKinematics()
    rng = np.random.default_rng(1)
    for joints in [np.array(HOME_JOINTS), *rng.uniform(world._lower, world._upper, size=(5, 7))]:
        _, quat = world.tool_pose(joints)
        expected = np.array(pybullet.getMatrixFromQuaternion(quat)).reshape(3, 3)
        _, rotation = kinematics.tool_frames(torch.tensor(joints, dtype=torch.float32))
        np.testing.assert_allclose(rotation.numpy(), expected, atol=1e-5)
    _, rotation = kinematics.tool_frames(torch.tensor(HOME_JOINTS, dtype=torch.float32))
    assert rotation[2, 2] < -0.99  # home points the tool down


def knocked(stage: np.ndarray, radians: float = 0.12) -> np.ndarray:
    """The stage with its base joint swung by a smooth bump (zero at the start): grip and placement
    land several centimetres off, as a sampled plan's do."""
    plan = stage.copy()
    plan[:, 0] += radians * np.sin(np.linspace(0, np.pi / 2, len(plan)))
    return plan


def grip_distance(world, plan: np.ndarray, block: int) -> float:
    run = next(run for run in held_runs(plan) if run.block == block)
    top = plan[0, block_slice(block)][:3] + (0, 0, BLOCK_SIZE / 2)
    return float(np.linalg.norm(world.tool_pose(plan[run.start, :7])[0] - top))


def test_a_knocked_stage_is_refined_into_one_that_grips_and_stacks(world, stage):
    relation = Relation("green", "red")
    plan = knocked(stage)
    assert grip_distance(world, plan, 1) > 0.03  # the world would not grip (2 cm)
    world.reset(seed=SEED)
    execute_plan(world, plan, 0.5)
    assert not on_top(world, "green", "red")

    refined = refine_plan(plan, relation, RefineConfig())
    assert refined.relation == relation
    np.testing.assert_array_equal(refined.observations[0], plan[0])  # the current state stays
    assert np.all(np.isfinite(refined.observations))
    assert grip_distance(world, refined.observations, 1) < 0.005
    assert refined.costs["place"] < 0.005 ** 2
    world.reset(seed=SEED)
    execute_plan(world, refined.observations, 0.5)
    assert on_top(world, "green", "red")


def test_without_a_relation_the_plan_is_refined_toward_the_block_it_releases_nearest(world, stage):
    assert intended_relation(stage, held_runs(stage), ArmKinematics()) == Relation("green", "red")
    assert refine_plan(knocked(stage), None, RefineConfig(iterations=0)).relation == Relation("green", "red")


def test_plans_without_holds_and_bad_input():
    still = np.tile(np.concatenate([HOME_JOINTS, np.zeros(STATE_DIM - 7)]), (16, 1))
    refined = refine_plan(still)
    assert refined.relation is None
    np.testing.assert_allclose(refined.observations, still, atol=1e-6)
    with pytest.raises(ValueError, match="finite states"):
        refine_plan(np.zeros((16, 30)))
    bad = still.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite states"):
        refine_plan(bad)
    with pytest.raises(ValueError, match="iterations"):
        RefineConfig(iterations=-1)
    with pytest.raises(ValueError, match="grip_weight"):
        RefineConfig(grip_weight=float("nan"))
    with pytest.raises(ValueError, match="grip_threshold"):
        RefineConfig(grip_threshold=1.0)


def test_refined_joints_stay_within_the_arm_limits(stage):
    """A plan pushed past joint 4's limit comes back inside every limit (the controller would clip it)."""
    kinematics = ArmKinematics()
    pushed = stage.copy()
    pushed[60:90, 3] = kinematics.lower[3].item() - 0.2  # joint 4 past its lower limit mid-carry
    refined = refine_plan(pushed, Relation("green", "red"))
    joints = refined.observations[1:, :7]
    assert np.all(joints >= kinematics.lower.numpy() - 1e-6) and np.all(joints <= kinematics.upper.numpy() + 1e-6)
    assert refined.costs["limits"] == 0.0


@pytest.mark.parametrize("optimiser", ["adam", "lbfgs"])
def test_both_optimisers_bring_a_knocked_grip_back_onto_the_block(stage, optimiser):
    """Either optimiser refines a stage whose joints were knocked off (its grip 6 cm from the block) into one
    that grips within 1 mm."""
    knocked = stage.copy()
    knocked[1:, :7] += 0.05
    iterations = 600 if optimiser == "adam" else 150
    refined = refine_plan(knocked, Relation("green", "red"), RefineConfig(optimiser=optimiser, iterations=iterations))
    assert refined.costs["grip"] < 1e-6
