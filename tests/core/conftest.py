"""Shared session fixtures: the toy line dataset and a tiny model trained on it once."""
from __future__ import annotations

import pytest

from diffuser_core.data.datasets import SequenceDataset, fit_normalizer
from diffuser_core.training.trainer import Trainer

from .toy import HORIZON, checkpoint_config, line_episodes, quick_training, tiny_diffusion


@pytest.fixture(scope="session")
def toy_episodes():
    return line_episodes()


@pytest.fixture(scope="session")
def toy_normalizer(toy_episodes):
    return fit_normalizer(toy_episodes, "limits")


@pytest.fixture(scope="session")
def toy_dataset(toy_episodes, toy_normalizer):
    return SequenceDataset(toy_episodes, HORIZON, toy_normalizer)


@pytest.fixture(scope="session")
def trained_toy(toy_dataset, toy_normalizer, tmp_path_factory):
    """A tiny diffusion model trained for 400 steps on straight lines (about 10 s on one core).
    Returns (trainer, untrained copy of the same initial weights)."""
    untrained = tiny_diffusion(seed=0)
    model = tiny_diffusion(seed=0)
    trainer = Trainer(model, toy_dataset, quick_training(), checkpoint_config(), toy_normalizer,
                      tmp_path_factory.mktemp("trained_toy"))
    trainer.train()
    return trainer, untrained
