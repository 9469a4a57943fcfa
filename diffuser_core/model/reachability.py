"""Reachability learned from the offline data alone: a classifier of whether state b follows state a
within K steps in the data.

Positives are pairs (s_t, s_{t+k}), 1 <= k <= K, from one episode; negatives pair s_t with a state
drawn from anywhere in the data (shuffled pairs). Its logit then scores how much more often the data
went from a to b within K steps than chance: a hop through a wall, which the data never made, scores
low. It knows no map; planning.choice ranks sampled plans by it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffuser_core.checkpoint import read_model_file, write_safetensors
from diffuser_core.data.pairs import PairSampler
from diffuser_core.training.fitting import fit_by_steps

REACHABILITY_KEY = "reachability"  # the metadata key of a reachability file


class ReachabilityModel(nn.Module):
    """(batch, dims) states a, b -> (batch,) logit that b follows a within `max_steps` steps; `dims` are
    the state columns it reads, standardized by the data's mean and spread."""

    def __init__(self, dims: Sequence[int], max_steps: int, mean, scale, hidden: int = 256, depth: int = 3):
        super().__init__()
        if not dims or max_steps < 1 or hidden < 1 or depth < 1:
            raise ValueError("ReachabilityModel needs state dims, max_steps >= 1 and positive sizes")
        self.dims, self.max_steps = tuple(int(d) for d in dims), int(max_steps)
        self.sizes = {"dims": list(self.dims), "max_steps": self.max_steps, "hidden": hidden, "depth": depth}
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(len(self.dims)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)).reshape(len(self.dims)))
        layers, width = [], 2 * len(self.dims)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Mish()]
            width = hidden
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits for rows of full states a and b (only `dims` are read)."""
        dims = list(self.dims)
        a, b = (a[..., dims] - self.mean) / self.scale, (b[..., dims] - self.mean) / self.scale
        return self.mlp(torch.cat([a, b], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def log_reachable(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """log p(b follows a within max_steps) of numpy rows of states."""
        logits = self(torch.as_tensor(np.asarray(a, dtype=np.float32)), torch.as_tensor(np.asarray(b, dtype=np.float32)))
        return F.logsigmoid(logits).numpy().astype(np.float64)


def pair_batch(sampler: PairSampler, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, labels) of `size` pairs, half positives (b within sampler.max_gap steps after a in one
    episode), half shuffled (b anywhere in the data)."""
    a, b, _ = sampler.sample(size)
    positive = rng.random(size) < 0.5
    b = np.where(positive[:, None], b, sampler.states[rng.integers(0, len(sampler.states), size)])
    return a, b, positive.astype(np.float32)


def train_reachability(observations: Sequence[np.ndarray], dims: Sequence[int], max_steps: int, steps: int = 20_000,
                       batch_size: int = 512, learning_rate: float = 1e-3, seed: int = 0, hidden: int = 256,
                       depth: int = 3, log_every: int = 2000) -> ReachabilityModel:
    """Fit a ReachabilityModel to pairs of the episodes' observations (binary cross-entropy)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sampler = PairSampler(observations, tuple(range(np.shape(observations[0])[1])), max_steps, rng)
    columns = sampler.states[:, list(dims)]
    model = ReachabilityModel(dims, max_steps, columns.mean(0), columns.std(0) + 1e-6, hidden, depth)

    def batch_loss() -> torch.Tensor:
        a, b, labels = (torch.as_tensor(array) for array in pair_batch(sampler, batch_size, rng))
        return F.binary_cross_entropy_with_logits(model(a, b), labels)

    fit_by_steps(model.parameters(), batch_loss, steps, learning_rate, log_every, "bce")
    return model.eval()


def save_reachability(path: str | Path, model: ReachabilityModel, extra: dict | None = None) -> Path:
    """One .safetensors file: weights, input standardization and sizes (atomic write)."""
    info = {"sizes": model.sizes, **(extra or {})}
    return write_safetensors(path, dict(model.state_dict()), {REACHABILITY_KEY: json.dumps(info)})


def load_reachability(path: str | Path) -> tuple[ReachabilityModel, dict]:
    """(model in eval mode, its stored info) of a reachability file."""
    tensors, info = read_model_file(path, REACHABILITY_KEY, "reachability")
    model = ReachabilityModel(mean=tensors["mean"].numpy(), scale=tensors["scale"].numpy(), **info["sizes"])
    model.load_state_dict(tensors)
    return model.eval(), info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="the offline data (its loader reads it)")
    parser.add_argument("--loader", required=True, help="a registered loader name or package.module:function")
    parser.add_argument("--dims", type=int, nargs="+", required=True, help="the state columns it reads")
    parser.add_argument("--max-steps", type=int, required=True, help="K: b within K steps after a is reachable")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from diffuser_core.data.datasets import resolve_loader

    torch.set_num_threads(args.threads)
    observations = [episode.observations for episode in resolve_loader(args.loader)(args.dataset)]
    print(f"{len(observations)} episodes, {sum(len(o) for o in observations)} states")
    model = train_reachability(observations, args.dims, args.max_steps, args.steps, args.batch_size,
                               seed=args.seed, hidden=args.hidden)
    save_reachability(args.out, model, {"dataset": str(args.dataset), "loader": args.loader, "steps": args.steps,
                                        "seed": args.seed})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
