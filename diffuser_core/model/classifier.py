"""A learned per-state classifier p(label | s_t, t) and its guide (paper §3.2, classifier guidance).

The classifier scores every state of a noisy trajectory for K binary labels (a task's conditions,
e.g. which object rests on which). It is trained on single states from the data, noised by the same
schedule the sampler uses, so its gradient is meaningful at every denoising step. The guide's J is
the wanted label's logit summed over a span of the plan; its gradient reaches every state column
(a held object's position moves the robot's joints too), except the columns `frozen` to it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from diffuser_core.checkpoint import read_model_file, write_safetensors
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.model.diffusion import NoiseSchedule
from diffuser_core.model.unet import time_mlp

CLASSIFIER_KEY = "state_classifier"  # the metadata key of a classifier file


class StateClassifier(nn.Module):
    """(batch, horizon, state_dim) noisy states + (batch,) steps -> (batch, horizon, labels) logits."""

    def __init__(self, state_dim: int, labels: int, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        if min(state_dim, labels, hidden, depth, time_dim) < 1:
            raise ValueError("StateClassifier sizes must be positive")
        self.state_dim, self.labels = state_dim, labels
        self.sizes = {"state_dim": state_dim, "labels": labels, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        self.time_embedding = time_mlp(time_dim)
        layers, width = [], state_dim + time_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Mish()]
            width = hidden
        self.mlp = nn.Sequential(*layers, nn.Linear(width, labels))

    def forward(self, states: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits of every label for every state."""
        if states.ndim != 3 or states.shape[-1] != self.state_dim:
            raise ValueError(f"expected (batch, horizon, {self.state_dim}), got {tuple(states.shape)}")
        embedding = self.time_embedding(t)[:, None, :].expand(-1, states.shape[1], -1)
        return self.mlp(torch.cat([states, embedding], dim=-1))


def save_classifier(path: str | Path, classifier: StateClassifier, normalizer: TrajectoryNormalizer,
                    n_timesteps: int, label_names: Sequence[str], extra: dict | None = None) -> Path:
    """One .safetensors file: the weights, the normalizer of the states it was trained on, its sizes,
    the diffusion steps its noise schedule has and the labels' names (atomic write)."""
    if len(label_names) != classifier.labels:
        raise ValueError(f"{classifier.labels} labels but {len(label_names)} names")
    tensors = {f"classifier.{k}": v for k, v in classifier.state_dict().items()}
    tensors.update({f"normalizer.{k}": v for k, v in normalizer.state_dict().items()})
    info = {"sizes": classifier.sizes, "n_timesteps": n_timesteps, "normalizer": normalizer.kind,
            "labels": list(label_names), **(extra or {})}
    return write_safetensors(path, tensors, {CLASSIFIER_KEY: json.dumps(info)})


def load_classifier(path: str | Path) -> tuple[StateClassifier, TrajectoryNormalizer, dict]:
    """(classifier in eval mode, the normalizer of its inputs, its stored info) of a classifier file."""
    tensors, info = read_model_file(path, CLASSIFIER_KEY, "state classifier")
    classifier = StateClassifier(**info["sizes"])
    classifier.load_state_dict({k[len("classifier."):]: v for k, v in tensors.items() if k.startswith("classifier.")})
    normalizer = TrajectoryNormalizer.from_state_dict(
        info["normalizer"], {k[len("normalizer."):]: v for k, v in tensors.items() if k.startswith("normalizer.")})
    return classifier.eval(), normalizer, info


class ClassifierObjective(nn.Module):
    """Training loss: binary cross-entropy of the labels of states noised to random diffusion steps."""

    def __init__(self, classifier: StateClassifier, n_timesteps: int):
        super().__init__()
        self.classifier = classifier
        self.schedule = NoiseSchedule(n_timesteps)

    def forward(self, states: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean BCE over a (batch, state_dim) batch of normalized states and (batch, labels) 0/1 labels."""
        t = torch.randint(0, self.schedule.n_timesteps, (states.shape[0],), device=states.device, generator=generator)
        states = states[:, None]  # one-state trajectories
        noise = torch.randn(states.shape, device=states.device, generator=generator)
        noisy = self.schedule.q_sample(states, t, noise)
        return F.binary_cross_entropy_with_logits(self.classifier(noisy, t)[:, 0], labels)
