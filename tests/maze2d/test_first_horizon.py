"""The plan-once evaluation sizes its first plan as its horizon_sizing says (fixed by default), and
the bench records the setting and the steps-to-go file's sha256."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from diffuser_core.checkpoint import save_steps_to_go
from diffuser_core.model.steps_to_go import StepsToGoConfig, fit_steps_to_go
from diffuser_core.planning.horizon import HorizonSizing
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, evaluate

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "maze2d_umaze.safetensors"
FAST = dict(sampler="ddim", denoising_steps=4, episode_steps=20, episodes=1, seed=3)
sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/maze2d/conftest.py


@pytest.fixture(scope="module")
def steps_file(tmp_path_factory):
    """A tiny steps-to-go model of random walks, saved."""
    walks = [np.cumsum(np.random.default_rng(k).normal(0, 0.05, (60, 4)), axis=0) for k in range(8)]
    config = StepsToGoConfig(max_gap=30, hidden=8, layers=1, frequencies=0, steps=20, batch_size=64)
    return save_steps_to_go(tmp_path_factory.mktemp("steps") / "steps.safetensors", fit_steps_to_go(walks, config))


def test_the_default_first_plan_has_the_models_horizon_and_a_straight_rule_sizes_it():
    fixed = evaluate(CHECKPOINT, Maze2DEvalConfig(**FAST), progress=False).episodes[0]
    sized = evaluate(CHECKPOINT, Maze2DEvalConfig(**FAST, horizon_sizing=HorizonSizing(
        "straight", per_unit=0.0, offset=30.0)), progress=False).episodes[0]
    assert len(fixed.first_plan) == 128 and len(sized.first_plan) == 32  # 30 rounded up to the U-Net's multiple
    assert sized.to_dict()["first_plan_steps"] == 32
    np.testing.assert_allclose(sized.first_plan[-1], [1.0, 1.0, 0.0, 0.0], atol=1e-6)  # still ends at the goal


def test_the_bench_records_the_sizing_and_the_steps_to_go_hash(steps_file, tmp_path):
    from bench._report import file_sha256
    from bench.eval_maze2d import main

    out = tmp_path / "learned.json"
    assert main(["--checkpoint", str(CHECKPOINT), "--episodes", "1", "--sampler", "ddim", "--steps", "4",
                 "--episode-steps", "20", "--quiet", "--first-horizon", "learned", "--steps-to-go", str(steps_file),
                 "--horizon-scale", "1.5", "--horizon-margin", "8", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["config"]["horizon_sizing"]["rule"] == "learned"
    assert record["config"]["horizon_sizing"]["scale"] == 1.5
    assert record["checkpoint_sha256"][str(steps_file)] == file_sha256(steps_file)
    assert "learned steps-to-go" in record["protocol"] and "steps-to-go" in out.with_suffix(".md").read_text()


def test_the_bench_refuses_a_learned_rule_without_its_file(capsys):
    from bench.eval_maze2d import main

    with pytest.raises(SystemExit):
        main(["--first-horizon", "learned", "--episodes", "1"])
    assert "steps_to_go file" in capsys.readouterr().err
