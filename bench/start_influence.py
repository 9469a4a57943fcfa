"""How much a diffusion model's denoised plan follows its inpainted start: the conditioning diagnostic.

  python bench/start_influence.py --checkpoints A.safetensors B.safetensors --data data/X.hdf5 \
      [--loader hdf5|kuka] [--dims 0 1] [--windows 16] [--out results/start_influence.json]

For training windows of the dataset, noise each to a fraction of the schedule, keep the start (and the
goal, for start_goal models) clean as in training, and predict the clean plan twice: as is, and with
the start's `dims` moved by +1 (normalized units). The influence is the mean change of the predicted
`dims` over plan steps 1-10: about 1 when the plan follows its start, 0 when the model ignores it
(a planner cannot then be steered by where the robot, or a block, is). Writes OUT (JSON) and OUT
with .md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, machine_line  # noqa: E402
from diffuser_core.checkpoint import load_checkpoint  # noqa: E402
from diffuser_core.data.datasets import SequenceDataset  # noqa: E402
from diffuser_core.model.diffusion import condition_mask  # noqa: E402
from diffuser_core.planning.planner import Planner, PlannerConfig  # noqa: E402
from diffuser_core.tasks import resolve_loader  # noqa: E402

NEAR_STEPS = slice(1, 11)


def start_influence(planner: Planner, windows: torch.Tensor, dims: list[int], noise_fraction: float,
                    generator: torch.Generator) -> float:
    """Mean change of the predicted `dims` (observation indices) at plan steps 1-10 per unit move of
    the start's `dims`, with the windows noised to `noise_fraction` of the schedule."""
    diffusion = planner.diffusion
    columns = [planner.action_dim + d for d in dims]
    step = min(diffusion.n_timesteps - 1, int(round(noise_fraction * diffusion.n_timesteps)))
    t = torch.full((len(windows),), step, dtype=torch.long)
    noise = torch.randn(windows.shape, generator=generator)
    mask = condition_mask(diffusion.config.condition_on, windows.shape[1], planner.action_dim,
                          diffusion.transition_dim)
    x_t = torch.where(mask, windows, diffusion.schedule.q_sample(windows, t, noise))
    moved = x_t.clone()
    moved[:, 0, columns] += 1.0
    with torch.inference_mode():
        change = diffusion.predict_x0(moved, t) - diffusion.predict_x0(x_t, t)
    return float(change[:, NEAR_STEPS][:, :, columns].abs().mean())


def training_windows(planner: Planner, episodes, count: int, seed: int) -> torch.Tensor:
    """`count` windows of the planner's horizon, normalized with its own normalizer."""
    dataset = SequenceDataset(episodes, planner.horizon, planner.normalizer)
    picks = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False)
    return torch.stack([torch.as_tensor(dataset[int(i)]["trajectories"]) for i in picks]).float()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--loader", default="hdf5", help="dataset loader name (hdf5, kuka, ...)")
    parser.add_argument("--dims", type=int, nargs="+", default=[0, 1], help="observation dims to move")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.2, 0.5, 0.9],
                        help="noise levels, as fractions of the diffusion schedule")
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "start_influence.json"))
    args = parser.parse_args(argv)
    if not all(0 < f < 1 for f in args.noise):
        parser.error("--noise fractions must be in (0, 1)")
    episodes = resolve_loader(args.loader)(args.data)
    rows = []
    for checkpoint in args.checkpoints:
        diffusion, normalizer, config = load_checkpoint(checkpoint, "cpu")
        planner = Planner(diffusion, normalizer, PlannerConfig(horizon=config.horizon), "cpu")
        if max(args.dims) >= planner.observation_dim or min(args.dims) < 0:
            parser.error(f"--dims must be observation dims of {checkpoint} (0..{planner.observation_dim - 1})")
        windows = training_windows(planner, episodes, args.windows, args.seed)
        generator = torch.Generator().manual_seed(args.seed)
        influence = {f"{f:g}": start_influence(planner, windows, args.dims, f, generator) for f in args.noise}
        rows.append({"checkpoint": str(checkpoint), "training_step": config.step,
                     "influence": influence})
        print(f"{checkpoint}: " + ", ".join(f"noise {k}: {v:.3f}" for k, v in influence.items()))
    record = {"command": command_line(__file__, argv), "machine": machine_info("cpu"), "seed": args.seed,
              "data": Path(args.data).name, "dims": args.dims, "windows": args.windows, "results": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    header = " | ".join(f"noise {k}" for k in rows[0]["influence"])
    lines = ["# How much plans follow their inpainted start (`bench/start_influence.py`)\n",
             f"Observation dims {args.dims} of the start moved by +1 (normalized); mean change of the same dims "
             f"predicted at plan steps 1-10, over {args.windows} windows of `{record['data']}` (1 = follows the "
             "start, 0 = ignores it).\n",
             f"| checkpoint | training step | {header} |", "|---|---|" + "---|" * len(rows[0]["influence"])]
    for row in rows:
        values = " | ".join(f"{v:.3f}" for v in row["influence"].values())
        lines.append(f"| `{Path(row['checkpoint']).parent.name}/{Path(row['checkpoint']).name}` "
                     f"| {row['training_step']} | {values} |")
    lines += ["", f"- command: `{record['command']}`", f"- machine: {machine_line(record['machine'])}",
              f"- seed {args.seed}", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
