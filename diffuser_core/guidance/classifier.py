"""Classifier guidance (paper §3.2): J is a learned per-state classifier's logit for the wanted label,
summed over the plan's later states (diffuser_core.model.classifier holds the classifier itself)."""
from __future__ import annotations

from typing import Sequence

import torch

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.model.classifier import StateClassifier


class ClassifierGuide:
    """J = the sum, over the plan's last `later_fraction` of states, of label `label`'s logit. x is the
    diffusion model's normalized trajectory (actions first); with `normalizer` (the diffusion model's)
    and `classifier_normalizer` (the classifier's inputs'), its states are moved from the first's
    units into the second's. `frozen`: state columns whose gradient is zeroed."""

    def __init__(self, classifier: StateClassifier, label: int, action_dim: int, later_fraction: float = 0.5,
                 frozen: Sequence[int] = (), normalizer: TrajectoryNormalizer | None = None,
                 classifier_normalizer: TrajectoryNormalizer | None = None):
        if (normalizer is None) != (classifier_normalizer is None):
            raise ValueError("ClassifierGuide needs both normalizers or neither")
        self.normalizer, self.classifier_normalizer = normalizer, classifier_normalizer
        if not 0 <= label < classifier.labels:
            raise ValueError(f"label must be in [0, {classifier.labels}), got {label}")
        if not 0.0 < later_fraction <= 1.0:
            raise ValueError(f"later_fraction must be in (0, 1], got {later_fraction}")
        self.classifier, self.label, self.action_dim = classifier.eval(), label, action_dim
        self.later_fraction = later_fraction
        self.free = torch.ones(classifier.state_dim)
        self.free[list(frozen)] = 0.0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        first = int(x.shape[1] * (1.0 - self.later_fraction))
        states = x[:, first:, self.action_dim:]
        if self.normalizer is not None:
            states = self.classifier_normalizer.observations.normalize(self.normalizer.observations.unnormalize(states))
        free = self.free.to(states)
        states = free * states + (1 - free) * states.detach()
        return self.classifier(states, t)[..., self.label].sum(-1)
