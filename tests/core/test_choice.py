"""Choosing among sampled plans by reachability learned from the data alone: a classifier of whether one
state follows another within K steps, trained on a U-shaped corridor, ranks a plan that goes round the U
above plans that hop across its middle wall (the hop the data never made)."""
import numpy as np
import pytest
import torch

from diffuser_core.data.pairs import PairSampler
from diffuser_core.model.reachability import load_reachability, pair_batch, save_reachability, train_reachability
from diffuser_core.model.visit_density import VisitDensity, load_visit_density, save_visit_density
from diffuser_core.planning.choice import density_rank, hop_states, reachability_rank

STEP = 0.1  # distance per step along the corridor
K = 10  # the classifier's hop: 1 unit of the corridor


def u_path() -> np.ndarray:
    """Up the left arm x = 0, across the top, down the right arm x = 1 (a wall between the arms)."""
    up = np.stack([np.zeros(41), np.linspace(0, 4, 41)], axis=1)
    across = np.stack([np.linspace(0, 1, 11)[1:], np.full(10, 4.0)], axis=1)
    down = np.stack([np.ones(40), np.linspace(4, 0, 41)[1:]], axis=1)
    return np.concatenate([up, across, down])


def corridor_episodes(count: int = 40, seed: int = 0) -> list[np.ndarray]:
    """Walks along the U, both ways, with a little noise (2-D positions)."""
    rng = np.random.default_rng(seed)
    path = u_path()
    return [(path if k % 2 == 0 else path[::-1]) + rng.normal(0, 0.02, path.shape) for k in range(count)]


@pytest.fixture(scope="module")
def model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_reachability(corridor_episodes(), dims=(0, 1), max_steps=K, steps=1000, batch_size=256,
                                  hidden=64, log_every=0)
    finally:
        torch.set_num_threads(threads)


def test_pairs_are_half_within_k_steps_and_half_shuffled():
    sampler = PairSampler(corridor_episodes(4), (0, 1), K, np.random.default_rng(0))
    a, b, labels = pair_batch(sampler, 2000, np.random.default_rng(0))
    assert a.shape == b.shape == (2000, 2) and 0.45 < labels.mean() < 0.55
    positives = labels == 1
    assert np.all(np.abs(a[positives] - b[positives]).sum(axis=1) <= K * STEP + 0.2)  # within K steps of the U
    assert np.abs(a[~positives] - b[~positives]).sum(axis=1).max() > 3.0  # shuffled: anywhere on the U


def test_the_plan_round_the_u_is_kept_over_plans_that_hop_the_wall(model):
    good = u_path()
    across = np.concatenate([np.repeat(good[:1], 5, 0), np.repeat(good[-1:], len(good) - 5, 0)])  # (0,0) -> (1,0)
    halfway = good.copy()
    halfway[30:] = good[-1]  # up the left arm, then straight to the bottom of the right arm
    costs = reachability_rank(model)(np.stack([across, good, halfway]))
    assert costs.shape == (3,) and int(np.argmin(costs)) == 1
    assert model.log_reachable(good[:1], good[K:K + 1])[0] > model.log_reachable(good[:1], good[-1:])[0] + 2.0


def test_a_visit_density_keeps_the_plan_round_the_u_over_one_through_the_wall(tmp_path):
    density = VisitDensity.fit(np.concatenate(corridor_episodes()), dims=(0, 1), cell=0.1, margin=0.2)
    good = u_path()
    through = np.stack([np.linspace(0, 1, len(good)), np.zeros(len(good))], axis=1)  # straight across the wall
    costs = density_rank(density)(np.stack([through, good]))
    assert int(np.argmin(costs)) == 1 and costs[0] > costs[1] + 10.0 * density.floor * -0.5
    assert density.log_density(np.array([[0.5, 2.0], [9.0, 9.0]])).tolist() == [density.floor] * 2  # wall, outside
    loaded, info = load_visit_density(save_visit_density(tmp_path / "visits.safetensors", density, {"dataset": "u"}))
    np.testing.assert_array_equal(loaded.log_density(good), density.log_density(good))
    assert info["dataset"] == "u"
    with pytest.raises(ValueError, match="positive cell size"):
        VisitDensity((0, 1), [0, 0], [1, 1], 0.0, np.ones((2, 2)))


def test_a_reachability_model_round_trips_through_its_file(model, tmp_path):
    path = save_reachability(tmp_path / "reach.safetensors", model, {"dataset": "corridor"})
    loaded, info = load_reachability(path)
    states = u_path()
    np.testing.assert_array_equal(loaded.log_reachable(states[:-K], states[K:]), model.log_reachable(states[:-K], states[K:]))
    assert info["dataset"] == "corridor" and loaded.max_steps == K and loaded.dims == (0, 1)


def test_hops_include_the_last_state_and_bad_files_are_refused(tmp_path):
    plan = np.arange(25)[:, None]
    assert hop_states(plan, 10)[:, 0].tolist() == [0, 10, 20, 24]
    from diffuser_core.checkpoint import write_safetensors
    other = write_safetensors(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, {"something": "else"})
    with pytest.raises(ValueError, match="not a reachability file"):
        load_reachability(other)
