"""A learned relation classifier for Kuka conditional stacking and rearrangement, as the paper guides.

The paper steers its unconditional model toward "block X on block Y" with a classifier over the 12
ordered block pairs, trained on the demonstrations' states (label: centres within 0.1 m in xy and
the top block higher), and guides with the wanted pair's logit over the later half of each plan.
Unlike the analytic relation guide (guides.relation_guide), its gradient reaches the arm's joints
as well as the blocks' positions. The other blocks' columns are frozen to it, as the reference does.

    python -m diffuser_core.tasks.kuka.relation_classifier --demos data/kuka_demos.hdf5 \\
        --checkpoint checkpoints/kuka_stack_stride4.safetensors --out runs/kuka_classifier.safetensors
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from diffuser_core.checkpoint import load_checkpoint
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.guidance.classifier import ClassifierGuide
from diffuser_core.guidance.guides import CompositeGuide, CostGuide
from diffuser_core.model.classifier import ClassifierObjective, StateClassifier, save_classifier
from diffuser_core.tasks.kuka.episodes import load_episodes
from diffuser_core.tasks.kuka.relation_guides import others_held_cost
from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, BLOCK_SIZE, STATE_DIM, Relation, attached_flags, block_slice
from diffuser_core.training.fitting import fit_by_steps

RELATION_PAIRS = tuple(Relation(top, bottom) for top, bottom in itertools.permutations(BLOCK_NAMES, 2))
LABEL_XY = 0.1  # m: the reference's label, centres this close in xy ...
LABEL_DZ = BLOCK_SIZE / 2  # ... and the top block at least half a block higher, neither held


def relation_labels(states: np.ndarray, xy: float = LABEL_XY, dz: float = LABEL_DZ) -> np.ndarray:
    """(N, 12) 0/1 labels of (N, 39) states, one per ordered pair of RELATION_PAIRS: top's centre within
    `xy` of bottom's in the plane, more than `dz` higher, and neither block held."""
    states = np.asarray(states, dtype=np.float64)
    held = attached_flags(states) > 0.5
    labels = np.zeros((len(states), len(RELATION_PAIRS)), dtype=np.float32)
    for k, relation in enumerate(RELATION_PAIRS):
        i, j = BLOCK_NAMES.index(relation.top), BLOCK_NAMES.index(relation.bottom)
        offset = states[:, block_slice(i)][:, :3] - states[:, block_slice(j)][:, :3]
        free = ~held[:, i] & ~held[:, j]
        labels[:, k] = (np.linalg.norm(offset[:, :2], axis=1) < xy) & (offset[:, 2] > dz) & free
    return labels


def train_relation_classifier(states: np.ndarray, normalizer: TrajectoryNormalizer, n_timesteps: int,
                              steps: int = 20_000, batch_size: int = 256, learning_rate: float = 1e-3,
                              seed: int = 0, log_every: int = 1000) -> StateClassifier:
    """Fit a StateClassifier to the relation labels of (N, 39) robot-unit states, normalized by
    `normalizer` (the diffusion model's) and noised by its `n_timesteps` schedule."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    inputs = torch.as_tensor(normalizer.observations.normalize(np.asarray(states, dtype=np.float32)), dtype=torch.float32)
    labels = torch.as_tensor(relation_labels(states))
    objective = ClassifierObjective(StateClassifier(STATE_DIM, len(RELATION_PAIRS)), n_timesteps)

    def batch_loss() -> torch.Tensor:
        rows = torch.randint(0, len(inputs), (batch_size,), generator=generator)
        return objective(inputs[rows], labels[rows], generator)

    fit_by_steps(objective.classifier.parameters(), batch_loss, steps, learning_rate, log_every, "bce")
    return objective.classifier.eval()


def relation_classifier_guide(classifier: StateClassifier, classifier_normalizer: TrajectoryNormalizer,
                              relation: Relation, normalizer: TrajectoryNormalizer,
                              later_fraction: float = 0.5, others_weight: float = 1.0) -> CompositeGuide:
    """The paper's guide toward `relation`: its logit over the plan's later half, the other two
    blocks' columns frozen to it, plus (`others_weight`) the push against holding a block the
    relation does not move (as the reference's constant push on those blocks' attached flags)."""
    pair = RELATION_PAIRS.index(Relation(relation.top, relation.bottom))
    others = [i for i, name in enumerate(BLOCK_NAMES) if name not in (relation.top, relation.bottom)]
    frozen = [column for i in others for column in range(block_slice(i).start, block_slice(i).stop)]
    logit = ClassifierGuide(classifier, pair, normalizer.action_dim, later_fraction, frozen, normalizer,
                            classifier_normalizer)
    action_dim = normalizer.action_dim
    held = CostGuide(lambda x, t: others_held_cost(x, [relation], action_dim), others_weight, normalizer)
    return CompositeGuide([(logit, 1.0), (held, 1.0)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", required=True, help="Kuka demonstrations (hdf5)")
    parser.add_argument("--checkpoint", required=True, help="the diffusion checkpoint the classifier guides")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    _, normalizer, config = load_checkpoint(args.checkpoint)
    states = np.concatenate([episode.observations for episode in load_episodes(args.demos)])
    print(f"{len(states)} states; positive fraction per pair {relation_labels(states).mean(0).round(3).tolist()}")
    classifier = train_relation_classifier(states, normalizer, config.diffusion.n_timesteps, args.steps,
                                           args.batch_size, seed=args.seed)
    save_classifier(args.out, classifier, normalizer, config.diffusion.n_timesteps,
                    [str(relation) for relation in RELATION_PAIRS],
                    {"demos": args.demos, "steps": args.steps, "seed": args.seed})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
