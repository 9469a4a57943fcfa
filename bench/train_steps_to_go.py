"""Train a steps-to-go model (diffuser_core.model.steps_to_go) on an offline dataset.

  python bench/train_steps_to_go.py --dataset data/maze2d-large-v1.hdf5 \
      --out checkpoints/maze2d_large_steps_to_go.safetensors [--loader maze2d] [--dims 0 1] \
      [--quantile 0.1] [--max-gap 800] [--steps 3000] [--threads 1]

Pairs (s_i, s_j) of the same episode (the loader's episodes: by default the task's training
segments) teach it a low quantile of log(j - i) from the `--dims` columns of both states. The file
keeps the weights, the input normalization, the settings and what it was trained on; the plan-once
evaluation sizes its first plan with it (bench/eval_maze2d.py --first-horizon learned).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, file_sha256, git_commit  # noqa: E402
from diffuser_core.checkpoint import save_steps_to_go  # noqa: E402
from diffuser_core.model.steps_to_go import StepsToGoConfig, fit_steps_to_go  # noqa: E402
from diffuser_core.tasks import resolve_loader  # noqa: E402

DEFAULTS = {f.name: f.default for f in fields(StepsToGoConfig)}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; the model's defaults are StepsToGoConfig's."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="offline dataset (a D4RL-layout hdf5)")
    parser.add_argument("--out", required=True, help="the model's .safetensors file")
    parser.add_argument("--loader", default="maze2d", help="episode loader: a task's name, 'hdf5' or module:function")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DEFAULTS["input_dims"]),
                        help="state columns the model reads (the task's position columns)")
    parser.add_argument("--quantile", type=float, default=DEFAULTS["quantile"], help="pinball loss tau")
    parser.add_argument("--max-gap", type=int, default=DEFAULTS["max_gap"], help="longest pair, in env steps")
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="optimisation steps")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    parser.add_argument("--layers", type=int, default=DEFAULTS["layers"])
    parser.add_argument("--frequencies", type=int, default=DEFAULTS["frequencies"], help="Fourier features per input")
    parser.add_argument("--lr", type=float, default=DEFAULTS["learning_rate"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no loss lines")
    return parser


def main(argv=None) -> int:
    """Load the episodes, train, write the model and say how long it took."""
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        config = StepsToGoConfig(tuple(args.dims), args.quantile, args.max_gap, args.hidden, args.layers,
                                 args.frequencies, args.steps, args.batch_size, args.lr, args.seed)
        episodes = [episode.observations for episode in resolve_loader(args.loader)(args.dataset)]
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    model = fit_steps_to_go(episodes, config, log=None if args.quiet else print)
    seconds = time.perf_counter() - started
    dataset = {"path": args.dataset, "sha256": file_sha256(args.dataset), "loader": args.loader,
               "episodes": len(episodes), "train_seconds": round(seconds, 1), "threads": args.threads,
               "git_commit": git_commit(), "command": command_line(__file__, argv)}
    save_steps_to_go(args.out, model, dataset)
    print(f"wrote {args.out}: trained on {len(episodes)} episodes of {args.dataset} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
