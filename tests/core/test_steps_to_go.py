"""The steps-to-go model (diffuser_core.model.steps_to_go): it learns a planted steps-distance relation,
keeps its predictions through its file, and rejects bad settings and inputs clearly."""
import numpy as np
import pytest
import torch

from diffuser_core.checkpoint import CheckpointError, load_steps_to_go, save_steps_to_go, write_safetensors
from diffuser_core.data.pairs import PairSampler
from diffuser_core.model.steps_to_go import StepsToGoConfig, fit_steps_to_go, pinball_loss

SPEED = 0.05  # units per step of the synthetic episodes
TINY = StepsToGoConfig(input_dims=(0, 1), quantile=0.2, max_gap=60, hidden=32, layers=2, frequencies=0,
                       steps=400, batch_size=256, learning_rate=1e-2, seed=0)


def straight_episodes(count=64, length=80, seed=0) -> list[np.ndarray]:
    """States (x, y, vx, vy) moving at SPEED along random straight lines: j - i = distance / SPEED."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(count):
        heading = rng.uniform(0, 2 * np.pi)
        velocity = SPEED * np.array([np.cos(heading), np.sin(heading)])
        xy = rng.uniform(-2, 2, 2) + np.arange(length)[:, None] * velocity
        episodes.append(np.concatenate([xy, np.broadcast_to(velocity, xy.shape)], axis=1))
    return episodes


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    return fit_steps_to_go(straight_episodes(), TINY)


def states_at(distances) -> tuple[np.ndarray, np.ndarray]:
    """Starts at the origin and goals `distances` away along x (zero velocity)."""
    goals = np.zeros((len(distances), 4))
    goals[:, 0] = distances
    return np.zeros((len(distances), 4)), goals


def test_the_model_learns_that_farther_goals_take_more_steps(fitted):
    distances = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    predicted = fitted.predict(*states_at(distances))
    assert np.all(np.diff(predicted) > 0)
    assert np.allclose(predicted[1:], distances[1:] / SPEED, rtol=0.3)  # planted: 20 ... 50 steps


def test_one_state_pair_gives_one_number(fitted):
    start, goal = states_at([1.0])
    assert fitted.predict(start[0], goal[0]).shape == ()
    assert float(fitted.predict(start[0], goal[0])) == pytest.approx(float(fitted.predict(start, goal)[0]))


def test_its_file_gives_identical_predictions_and_settings(fitted, tmp_path):
    path = save_steps_to_go(tmp_path / "steps.safetensors", fitted, {"path": "synthetic"})
    loaded = load_steps_to_go(path)
    starts, goals = states_at(np.linspace(0.1, 3.0, 7))
    assert loaded.config == fitted.config
    assert np.array_equal(loaded.predict(starts, goals), fitted.predict(starts, goals))
    assert torch.equal(loaded.mean, fitted.mean) and torch.equal(loaded.std, fitted.std)


def test_a_file_of_another_kind_is_refused(tmp_path):
    other = write_safetensors(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, {"note": "x"})
    with pytest.raises(CheckpointError, match="not a steps-to-go model"):
        load_steps_to_go(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_steps_to_go(tmp_path / "missing.safetensors")


def test_pairs_stay_within_one_episode_and_the_gap_limit():
    episodes = [np.full((5, 2), 0.0), np.full((50, 2), 1.0)]
    starts, goals, steps = PairSampler(episodes, (0, 1), 7, np.random.default_rng(0)).sample(500)
    assert np.all(starts == goals) and steps.min() >= 1 and steps.max() <= 7


def test_the_pinball_loss_weighs_under_and_over_prediction_by_the_quantile():
    target = torch.zeros(1)
    assert pinball_loss(torch.tensor([-1.0]), target, 0.2).item() == pytest.approx(0.2)  # under: tau
    assert pinball_loss(torch.tensor([1.0]), target, 0.2).item() == pytest.approx(0.8)  # over: 1 - tau


@pytest.mark.parametrize("settings, words", [
    ({"quantile": 1.0}, "quantile"), ({"input_dims": ()}, "input_dims"), ({"input_dims": (0, 0)}, "input_dims"),
    ({"max_gap": 0}, "max_gap"), ({"frequencies": -1}, "frequencies"), ({"learning_rate": 0.0}, "learning_rate"),
])
def test_bad_settings_are_named(settings, words):
    with pytest.raises(ValueError, match=words):
        StepsToGoConfig(**settings)


def test_bad_inputs_are_named(fitted):
    with pytest.raises(ValueError, match="start must be"):
        fitted.predict(np.zeros(1), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        fitted.predict(np.zeros(4), np.full(4, np.nan))
    with pytest.raises(ValueError, match="same shape"):
        fitted.predict(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="two or more states"):
        fit_steps_to_go([np.zeros((1, 4))], TINY)
    with pytest.raises(ValueError, match="obs > 1"):
        fit_steps_to_go([np.zeros((10, 1))], TINY)
