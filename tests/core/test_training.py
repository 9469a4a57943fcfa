"""Trainer: real learning on toy lines, determinism, exact resume, EMA, DDP with 2 gloo processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from diffuser_core.config import TrainingConfig
from diffuser_core.data.datasets import SequenceDataset
from diffuser_core.planning.planner import Planner, PlannerConfig
from diffuser_core.training.ema import EMA
from diffuser_core.training.trainer import Trainer

from .toy import HORIZON, checkpoint_config, line_episodes, quick_training, straight_line, tiny_diffusion

REPO = Path(__file__).resolve().parents[2]


def mean_error_to_lines(diffusion, normalizer, count=20):
    """Mean |plan - true straight line| (robot units) for random start/goal pairs."""
    planner = Planner(diffusion, normalizer, PlannerConfig(sampler="ddpm", horizon=HORIZON, seed=0))
    rng = np.random.default_rng(123)
    errors = []
    for _ in range(count):
        start, goal = rng.uniform(-3, 3, 2), rng.uniform(-3, 3, 2)
        plan = planner.plan(start, goal=goal)
        errors.append(np.abs(plan.observations - straight_line(start, goal, HORIZON)[0]).mean())
    return float(np.mean(errors))


def test_training_learns_the_straight_line_family(trained_toy, toy_normalizer):
    trainer, untrained = trained_toy
    before = mean_error_to_lines(untrained, toy_normalizer)
    after = mean_error_to_lines(trainer.ema.model, toy_normalizer)
    assert before > 0.6  # random plans are far from the lines (coordinates span [-3, 3])
    assert after < 0.35 * before
    assert trainer.history[-1]["loss"] < 0.3 * trainer.history[0]["loss"]


def short_run(tmp_path, toy_dataset, toy_normalizer, steps, resume=None, **overrides):
    settings = dict(steps=6, batch_size=8, checkpoint_every=3, log_every=3)
    settings.update(overrides)
    trainer = Trainer(tiny_diffusion(seed=0), toy_dataset, quick_training(**settings),
                      checkpoint_config(), toy_normalizer, tmp_path)
    if resume:
        trainer.resume(resume)
    trainer.train(steps)
    return trainer


def state(trainer):
    return {**{f"model.{k}": v for k, v in trainer.objective.state_dict().items()},
            **{f"ema.{k}": v for k, v in trainer.ema.model.state_dict().items()}}


def test_training_is_deterministic_and_resumes_exactly(tmp_path, toy_dataset, toy_normalizer):
    full = short_run(tmp_path / "a", toy_dataset, toy_normalizer, 6, grad_accumulation=2)
    again = short_run(tmp_path / "b", toy_dataset, toy_normalizer, 6, grad_accumulation=2)
    resumed = short_run(tmp_path / "c", toy_dataset, toy_normalizer, 6, grad_accumulation=2,
                        resume=tmp_path / "a" / "step_0000003.safetensors")
    assert resumed.step == 6
    for name, value in state(full).items():
        assert torch.equal(value, state(again)[name]), name
        assert torch.equal(value, state(resumed)[name]), name
    assert not torch.equal(state(full)["model.network.final.1.weight"],
                           tiny_diffusion(seed=0).state_dict()["network.final.1.weight"])
    assert sorted(p.name for p in (tmp_path / "a").glob("*.safetensors")) == [
        "latest.safetensors", "step_0000003.safetensors", "step_0000006.safetensors"]
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged] == [3, 6]


def test_dataset_smaller_than_a_batch_is_rejected(tmp_path, toy_normalizer):
    tiny = SequenceDataset(line_episodes(count=2, length=HORIZON), HORIZON, toy_normalizer)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        Trainer(tiny_diffusion(), tiny, quick_training(batch_size=8), checkpoint_config(),
                toy_normalizer, tmp_path)


def test_ema_copies_then_averages():
    live = nn.Linear(1, 1, bias=False)
    nn.init.constant_(live.weight, 0.0)
    ema = EMA(live, decay=0.75, start_step=2)
    nn.init.constant_(live.weight, 4.0)
    ema.update(live, step=1)  # before start: copy
    assert ema.model.weight.item() == 4.0
    nn.init.constant_(live.weight, 8.0)
    ema.update(live, step=2)  # 0.75 * 4 + 0.25 * 8
    assert ema.model.weight.item() == 5.0
    assert not ema.model.weight.requires_grad


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "training.steps"), (dict(learning_rate=0), "learning_rate"),
    (dict(ema_decay=1.0), "ema_decay"), (dict(grad_clip=-1), "grad_clip")])
def test_training_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**kwargs)


def test_two_process_ddp_training_on_cpu(tmp_path):
    """torchrun with 2 gloo processes: weights stay in sync and only rank 0 writes files."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO / "tests" / "core" / "ddp_worker.py"), str(tmp_path)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["backend"] == "gloo"
    assert reports[0]["saved"].endswith("step_0000004.safetensors") and reports[1]["saved"] == "None"
    weights = [np.load(tmp_path / f"weights_rank{r}.npy") for r in (0, 1)]
    assert np.array_equal(weights[0], weights[1])  # started different, DDP kept them identical
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2  # rank 0 only
