"""Scripted demonstrations end in the goal stack and are written in D4RL hdf5 layout."""
import h5py
import numpy as np
import pytest

from diffuser_core.tasks.kuka.world import KukaBlockWorld, KukaWorldConfig
from diffuser_core.tasks.kuka.demos import DemoConfig, demonstrate, generate, main, placement_tolerance, write_demos
from diffuser_core.tasks.kuka.tasks import (BLOCK_NAMES, REFERENCE_REWARD_RULE, Relation, relations_from_order, score,
                                           stacked_relations)


@pytest.fixture(scope="module")
def world():
    with KukaBlockWorld(seed=0) as world:
        yield world


def test_tower_demo_builds_the_requested_tower_in_three_128_step_stages(world):
    order = ["yellow", "red", "blue", "green"]
    episode = demonstrate(world, "stack", relations_from_order(order), seed=11)
    assert episode is not None
    assert episode.observations.shape == (384, 39) and episode.actions.shape == (384, 8)
    assert np.array_equal(np.bincount(episode.stages), [128, 128, 128])
    assert score(episode.final_state, "stack", relations_from_order(order)) == (3, 3, 100.0)
    assert score(world, "stack") == (3, 3, 100.0)  # the world agrees with the recorded final state
    assert set(np.unique(episode.actions[:, 7])) == {0.0, 1.0}
    held = episode.observations[:, [14, 22, 30, 38]]
    assert held.sum(axis=1).max() == 1  # never two blocks at once
    assert episode.rewards().sum() == 3 and set(np.unique(episode.rewards())) == {0.0, 1.0}
    world.step(48)  # the tower stands after two more simulated seconds
    assert score(world, "stack") == (3, 3, 100.0)


def test_rearrangement_demo_makes_separate_stacks(world):
    relations = [Relation("red", "blue"), Relation("green", "yellow")]
    episode = demonstrate(world, "rearrange", relations, seed=5)
    assert episode is not None and len(episode.observations) == 256
    assert set(relations) <= stacked_relations(episode.final_state)
    assert score(episode.final_state, "rearrange", relations) == (2, 2, 100.0)


def test_generator_writes_successful_episodes_in_d4rl_layout(tmp_path):
    episodes, attempts = generate(2, seed=3, rearrange_fraction=0.5, progress=False)
    assert len(episodes) == 2 and attempts >= 2
    path = tmp_path / "demos.hdf5"
    write_demos(str(path), episodes)
    lengths = [len(episode.observations) for episode in episodes]
    with h5py.File(path, "r") as file:
        total = sum(lengths)
        assert file["observations"].shape == (total, 39) and file["observations"].dtype == np.float32
        assert file["actions"].shape == (total, 8)
        assert file["rewards"].shape == file["terminals"].shape == file["timeouts"].shape == (total,)
        assert np.flatnonzero(file["timeouts"][()]).tolist() == list(np.cumsum(lengths) - 1)
        assert not file["terminals"][()].any()
        assert file["infos/relations"].shape == (total, 3, 2) and file["infos/stage"][()].max() <= 2
        assert list(file.attrs["block_names"]) == list(BLOCK_NAMES)
        assert file["rewards"][()].sum() == sum(len(episode.relations) for episode in episodes)
        first = file["infos/relations"][0]
        assert [Relation(BLOCK_NAMES[top], BLOCK_NAMES[bottom]) for top, bottom in first if top >= 0] \
            == episodes[0].relations
        final = episodes[-1].final_state
        assert set(episodes[-1].relations) <= stacked_relations(final)


def test_generated_episodes_do_not_depend_on_the_worker_count():
    alone, _ = generate(2, seed=4, progress=False)
    pooled, _ = generate(2, seed=4, workers=2, progress=False)
    for first, second in zip(alone, pooled):
        assert first.relations == second.relations
        assert np.array_equal(first.observations, second.observations)
        assert np.array_equal(first.actions, second.actions)


def test_cli_writes_a_file(tmp_path, capsys):
    path = tmp_path / "cli.hdf5"
    main(["--episodes", "1", "--out", str(path), "--seed", "0"])
    assert "episodes/min" in capsys.readouterr().out
    with h5py.File(path, "r") as file:
        assert file["observations"].shape == (384, 39) and file.attrs["seed"] == 0


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="more than stage_steps"):
        DemoConfig(stage_steps=100)
    with pytest.raises(ValueError, match="rearrange_fraction"):
        generate(1, seed=0, rearrange_fraction=1.5)
    with pytest.raises(ValueError, match="no episodes"):
        write_demos("unused.hdf5", [])


def test_reference_world_demos_start_on_its_ring_and_stack_its_slabs_a_slab_high():
    """Demonstrations for the reference code's world: blocks all round the arm at its 0.6 m ring, each
    slab placed centred on the one below, one slab (0.06 m) higher, with the flange colliding (an
    attempt whose blocks the scripted IK cannot reach behind the arm is dropped, as any failed one)."""
    order = ["green", "blue", "yellow", "red"]
    with KukaBlockWorld(config=KukaWorldConfig.reference()) as world:
        episodes = (demonstrate(world, "stack", relations_from_order(order), seed=seed) for seed in range(12))
        kept = [episode for episode in episodes if episode is not None][:1]
        assert kept, "no reference-world demonstration succeeded"
        start = kept[0].observations[0]
        radii = [np.hypot(*start[7 + 8 * index: 9 + 8 * index]) for index in range(4)]
        assert np.allclose(radii, 0.6, atol=1e-3)
        tops = [kept[0].final_state[9 + 8 * BLOCK_NAMES.index(name)] for name in order]
        assert np.allclose(np.diff(tops), 0.06, atol=0.01)  # the order runs bottom to top
        assert set(relations_from_order(order)) <= stacked_relations(kept[0].final_state, REFERENCE_REWARD_RULE)
        assert placement_tolerance(world).block_size == 0.06
