"""The learned relation classifier (the paper's guide for conditional stacking): its labels, its file,
its guide's gradient (frozen columns get none, the arm's joints do), training that learns the labels,
and the evaluation command guided by it (mechanics with tiny models, not a score)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.classifier import ClassifierGuide
from diffuser_core.model.classifier import StateClassifier, load_classifier, save_classifier
from diffuser_core.tasks.kuka.relation_classifier import (
    RELATION_PAIRS,
    relation_classifier_guide,
    relation_labels,
    train_relation_classifier,
)
from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, BLOCK_SIZE, STATE_DIM, Relation, block_slice
from diffuser_core.tasks.kuka.world import KukaBlockWorld

from .test_kuka_planning import ROOT, demo_file, tiny_kuka_checkpoint  # noqa: F401 (module fixture)


@pytest.fixture(scope="module")
def scene():
    with KukaBlockWorld(seed=0) as world:
        return world.reset(seed=1)


def stacked(state, top: str, bottom: str, held: bool = False):
    state = np.array(state, dtype=np.float64)
    top_columns, bottom_columns = block_slice(BLOCK_NAMES.index(top)), block_slice(BLOCK_NAMES.index(bottom))
    state[top_columns][:3] = state[bottom_columns][:3] + [0.01, 0.0, BLOCK_SIZE]
    state[top_columns.stop - 1] = 1.0 if held else 0.0
    return state


def identity_normalizer() -> TrajectoryNormalizer:
    return TrajectoryNormalizer.fit(np.array([[-1.0] * STATE_DIM, [1.0] * STATE_DIM]), np.zeros((2, 0)))


def test_labels_mark_only_the_pair_that_stands_stacked(scene):
    labels = relation_labels(np.stack([scene, stacked(scene, "red", "green"), stacked(scene, "red", "green", held=True)]))
    assert labels.shape == (3, 12) and len(RELATION_PAIRS) == 12
    assert labels[0].sum() == 0 and labels[2].sum() == 0  # apart, or still held: not stacked
    assert labels[1].sum() == 1 and labels[1][RELATION_PAIRS.index(Relation("red", "green"))] == 1


def test_a_classifier_file_round_trips_and_refuses_other_files(tmp_path):
    classifier = StateClassifier(STATE_DIM, 12, hidden=16, depth=2, time_dim=8)
    path = save_classifier(tmp_path / "c.safetensors", classifier, identity_normalizer(), 10,
                           [str(r) for r in RELATION_PAIRS])
    loaded, normalizer, info = load_classifier(path)
    states, t = torch.randn(2, 5, STATE_DIM), torch.tensor([0, 9])
    torch.testing.assert_close(loaded(states, t), classifier(states, t))
    assert info["n_timesteps"] == 10 and info["labels"][0] == "red on green" and normalizer.observation_dim == STATE_DIM
    with pytest.raises(ValueError, match="labels but"):
        save_classifier(tmp_path / "bad.safetensors", classifier, identity_normalizer(), 10, ["one"])
    (tmp_path / "other.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read"):
        load_classifier(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a state classifier file"):
        load_classifier(tiny_file(tmp_path))


def tiny_file(tmp_path):
    """A safetensors file that is not a classifier's."""
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, tmp_path / "plain.safetensors")
    return tmp_path / "plain.safetensors"


def test_the_guide_moves_joints_and_its_blocks_but_not_frozen_columns():
    classifier = StateClassifier(STATE_DIM, 12, hidden=16, depth=2, time_dim=8)
    normalizer = identity_normalizer()
    guide = relation_classifier_guide(classifier, normalizer, Relation("red", "green"), normalizer)
    x = torch.randn(3, 8, STATE_DIM, requires_grad=True)
    reward = guide(x, torch.zeros(3, dtype=torch.long))
    assert reward.shape == (3,)
    gradient = torch.autograd.grad(reward.sum(), x)[0]
    other_flags = [block_slice(BLOCK_NAMES.index(name)).stop - 1 for name in ("green", "blue", "yellow")]  # not moved
    earlier = gradient[:, :4].clone()
    earlier[..., other_flags] = 0
    assert earlier.abs().sum() == 0  # the classifier scores only the later half of the plan
    later = gradient[:, 4:]
    assert later[..., :7].abs().sum() > 0  # the arm's joints
    for name in ("red", "green"):
        assert later[..., block_slice(BLOCK_NAMES.index(name))][..., :3].abs().sum() > 0
    for name in ("blue", "yellow"):  # other blocks: frozen to the classifier, attached flag pushed down
        columns = block_slice(BLOCK_NAMES.index(name))
        assert later[..., columns.start:columns.stop - 1].abs().sum() == 0
        flags = gradient[..., columns.stop - 1]
        assert (flags <= 0).all() and (flags < 0).any()
    with pytest.raises(ValueError, match="label"):
        ClassifierGuide(classifier, 12, 0)


def test_training_learns_the_labels_of_clean_states(scene):
    rng = np.random.default_rng(0)
    pairs = [RELATION_PAIRS[k] for k in rng.integers(0, 12, 400)]
    states = np.stack([stacked(scene, p.top, p.bottom) if k % 2 else scene for k, p in enumerate(pairs)])
    states[:, :7] += rng.normal(0, 0.3, (len(states), 7))  # arms anywhere
    normalizer = TrajectoryNormalizer.fit(states, np.zeros((len(states), 0)))
    classifier = train_relation_classifier(states, normalizer, n_timesteps=10, steps=1500, batch_size=64, log_every=0)
    inputs = torch.as_tensor(normalizer.observations.normalize(states.astype(np.float32)))[:, None]
    with torch.no_grad():
        predicted = classifier(inputs, torch.zeros(len(states), dtype=torch.long))[:, 0] > 0
    accuracy = (predicted.numpy() == relation_labels(states).astype(bool)).all(-1).mean()
    assert accuracy > 0.9, accuracy


def test_the_eval_command_guides_relations_with_a_classifier(tmp_path, demo_file):  # noqa: F811
    checkpoint = tiny_kuka_checkpoint(tmp_path / "tiny.safetensors", demo_file)
    classifier = tmp_path / "classifier.safetensors"
    made = subprocess.run([sys.executable, "-m", "diffuser_core.tasks.kuka.relation_classifier", "--demos", str(demo_file),
                           "--checkpoint", str(checkpoint), "--out", str(classifier), "--steps", "20", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "kuka.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_kuka.py"), "--checkpoint", str(checkpoint),
                             "--classifier", str(classifier), "--modes", "conditional", "--episodes", "1",
                             "--stages", "1", "--steps", "2", "--threads", "1", "--out", str(out), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record["results"][0]["config"]["classifier"] == str(classifier)
    assert str(classifier) in record["checkpoint_sha256"]
    assert "relations guided by the learned classifier classifier.safetensors" in out.with_suffix(".md").read_text()
    missing = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_kuka.py"), "--checkpoint", str(checkpoint),
                              "--classifier", str(tmp_path / "none"), "--episodes", "1"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "classifier not found" in missing.stderr
