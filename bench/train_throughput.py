"""Training throughput: samples/s of the project's Trainer vs a minimal PyTorch loop.

  python bench/train_throughput.py [--experiment experiments/maze2d_umaze.yaml] \
      [--dataset data/maze2d-umaze-v1.hdf5 | --synthetic EPISODES] [--steps 200] [--warmup 20] \
      [--repeats 2] [--batch-size B] [--threads N] [--device cpu] [--out results/perf_train.json]

Both train the same model (the experiment's U-Net inside its Gaussian diffusion, same initial
weights) on the same dataset windows with the same batch size. The plain loop is DataLoader
(shuffled) -> loss -> backward -> AdamW step. The Trainer adds gradient clipping, the EMA update,
its resumable batch order and logging, and writes a checkpoint at the end of every train() call
(included in its time). Runs alternate (plain, trainer, plain, trainer, ...) and the best repeat of
each counts. Target: the Trainer within 2x of the plain loop's samples/s. Writes OUT (JSON) and its
section of results/perf.md (next to OUT).
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import (  # noqa: E402
    Target,
    machine_info,
    machine_line,
    require_at_least_one,
    run_cli,
    targets_table,
    update_section,
    write_json,
)
from diffuser_core.checkpoint import CheckpointConfig  # noqa: E402
from diffuser_core.config import ExperimentConfig, resolve_device  # noqa: E402
from diffuser_core.data.datasets import Episode, SequenceDataset, fit_normalizer  # noqa: E402
from diffuser_core.model.diffusion import build_diffusion  # noqa: E402
from diffuser_core.tasks import resolve_loader  # noqa: E402
from diffuser_core.training.trainer import Trainer  # noqa: E402

SLOWDOWN_TARGET = 2.0  # the trainer's samples/s may be at most this factor below the plain loop's
SYNTHETIC_DIMS = (4, 2)  # observation, action (Maze2D's)
NEVER = 10 ** 9  # checkpoint/log period that never comes inside a timed run


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; defaults measure the shipped Maze2D U-Maze model on its data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default=str(ROOT / "experiments" / "maze2d_umaze.yaml"))
    parser.add_argument("--dataset", default=str(ROOT / "data" / "maze2d-umaze-v1.hdf5"))
    parser.add_argument("--synthetic", type=int, default=None, metavar="EPISODES",
                        help="use this many random-walk episodes instead of --dataset")
    parser.add_argument("--steps", type=int, default=200, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed optimizer steps before each run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each loop")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the experiment's")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "perf_train.json"))
    return parser


def main(argv=None) -> int:
    """Parse options, time both loops, write JSON and markdown."""
    return run_cli(build_parser(), argv, __file__, run, check_args)


def check_args(args) -> None:
    """ValueError with a clear message for unusable option values."""
    require_at_least_one(args, ("steps", "warmup", "repeats", "batch_size", "threads", "synthetic"), optional=True)
    if not Path(args.experiment).is_file():
        raise ValueError(f"experiment file not found: {args.experiment}")
    if args.synthetic is None and not Path(args.dataset).is_file():
        raise ValueError(f"dataset not found: {args.dataset} (or use --synthetic EPISODES)")


def synthetic_episodes(count: int, length: int, seed: int) -> list[Episode]:
    """Random-walk episodes with Maze2D's dimensions (throughput does not depend on the data)."""
    rng = np.random.default_rng(seed)
    observation_dim, action_dim = SYNTHETIC_DIMS
    return [Episode(np.cumsum(rng.normal(0, 0.1, (length, observation_dim)), axis=0),
                    rng.uniform(-1, 1, (length, action_dim))) for _ in range(count)]


def run(args, command: str) -> dict:
    """Build the dataset and model once, then time the plain loop and the Trainer alternately."""
    started = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    experiment = ExperimentConfig.from_file(args.experiment)
    horizon = experiment.dataset.horizon
    episodes = (synthetic_episodes(args.synthetic, 2 * horizon, args.seed) if args.synthetic
                else resolve_loader(experiment.loader)(args.dataset))
    normalizer = fit_normalizer(episodes, experiment.dataset.normalizer, experiment.dataset.normalizer_min_scale)
    dataset = SequenceDataset(episodes, horizon, normalizer, experiment.dataset.padding)
    training = replace(experiment.training, steps=args.warmup + args.steps, progress=False,
                       batch_size=args.batch_size or experiment.training.batch_size,
                       device=args.device, checkpoint_every=NEVER, log_every=NEVER, seed=args.seed)
    torch.manual_seed(args.seed)
    model = build_diffusion(normalizer.observation_dim, normalizer.action_dim, experiment.model,
                            experiment.diffusion)
    checkpoint_config = CheckpointConfig("diffusion", normalizer.observation_dim, normalizer.action_dim,
                                         horizon, normalizer.kind, experiment.diffusion, experiment.model,
                                         env=experiment.env)
    samples_per_step = training.batch_size * training.grad_accumulation
    runs = {"plain": [], "trainer": []}
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as scratch:
        for repeat in range(args.repeats):
            runs["plain"].append(time_plain_loop(copy.deepcopy(model), dataset, training, args))
            out_dir = Path(scratch) / f"run{repeat}"
            runs["trainer"].append(time_trainer(copy.deepcopy(model), dataset, training,
                                                checkpoint_config, normalizer, out_dir, args))
    rates = {name: [args.steps * samples_per_step / seconds for seconds in times]
             for name, times in runs.items()}
    record = {"benchmark": "train", "command": command,
              "machine": machine_info(resolve_device(args.device)), "seed": args.seed,
              "experiment": args.experiment,
              "data": f"{args.synthetic} synthetic episodes" if args.synthetic else args.dataset,
              "windows": len(dataset), "parameters": sum(p.numel() for p in model.parameters()),
              "horizon": horizon, "batch_size": training.batch_size,
              "grad_accumulation": training.grad_accumulation, "steps": args.steps, "warmup": args.warmup,
              "seconds": runs, "samples_per_s": rates,
              "best_samples_per_s": {name: max(values) for name, values in rates.items()}}
    record["targets"] = [throughput_target(record["best_samples_per_s"]).to_dict()]
    record["wall_time_s"] = time.perf_counter() - started
    out = Path(args.out)
    write_json(out, record)
    update_section(out.with_name("perf.md"), "train", markdown_section(record))
    return record


def time_plain_loop(model, dataset, training, args) -> float:
    """Seconds for args.steps steps of the minimal loop (after args.warmup untimed steps)."""
    device = resolve_device(args.device)
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.learning_rate,
                                  weight_decay=training.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    batches = endless(DataLoader(dataset, batch_size=training.batch_size, shuffle=True, drop_last=True,
                                 generator=generator))

    def step():
        loss = model(next(batches)["trajectories"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    synchronize(device)
    began = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    return time.perf_counter() - began


def time_trainer(model, dataset, training, checkpoint_config, normalizer, out_dir, args) -> float:
    """Seconds of Trainer.train for args.steps steps after args.warmup untimed ones."""
    trainer = Trainer(model, dataset, training, checkpoint_config, normalizer, out_dir)
    trainer.train(args.warmup)
    synchronize(trainer.context.device)
    began = time.perf_counter()
    trainer.train(args.warmup + args.steps)
    synchronize(trainer.context.device)
    return time.perf_counter() - began


def endless(loader):
    """Batches of a DataLoader, epoch after epoch."""
    while True:
        yield from loader


def synchronize(device) -> None:
    """Wait for queued GPU work, so wall time covers it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput_target(best: dict) -> Target:
    """The Trainer within 2x of the plain loop's samples/s."""
    ratio = best["plain"] / best["trainer"]
    return Target("trainer throughput", f"plain loop / trainer samples/s <= {SLOWDOWN_TARGET:.0f}",
                  f"{ratio:.2f} ({best['trainer']:.0f} vs {best['plain']:.0f} samples/s)",
                  ratio <= SLOWDOWN_TARGET)


def markdown_section(record: dict) -> str:
    """The 'train' section of perf.md: both loops' samples/s, the target, command and machine."""
    lines = [
        "## Training throughput (`bench/train_throughput.py`)", "",
        f"Model: the experiment's U-Net ({record['parameters'] / 1e6:.2f} M parameters), horizon "
        f"{record['horizon']}, batch {record['batch_size']} x grad accumulation "
        f"{record['grad_accumulation']}; "
        f"data: {record['data']} ({record['windows']} windows). Each run: {record['warmup']} untimed + "
        f"{record['steps']} timed optimizer steps; runs alternate plain / trainer; best repeat counts. "
        "Plain loop = shuffled DataLoader -> loss -> backward -> AdamW. Trainer = the same plus gradient "
        "clipping, EMA, resumable batch order, logging and one checkpoint write per run.", "",
        "| loop | samples/s per repeat | best samples/s | ms per optimizer step |", "|---|---|---|---|",
        *(loop_row(record, name) for name in record["samples_per_s"]), "",
        *targets_table([Target(**t) for t in record["targets"]]), "",
        f"- command: `{record['command']}`", f"- machine: {machine_line(record['machine'])}",
        f"- seed {record['seed']}; wall time {record['wall_time_s']:.0f} s",
    ]
    return "\n".join(lines)


def loop_row(record: dict, name: str) -> str:
    """One markdown table row: a loop's samples/s per repeat, the best, and ms per optimizer step."""
    best = record["best_samples_per_s"][name]
    per_repeat = ", ".join(f"{rate:.0f}" for rate in record["samples_per_s"][name])
    step_ms = 1e3 * record["batch_size"] * record["grad_accumulation"] / best
    return f"| {name} | {per_repeat} | {best:.0f} | {step_ms:.1f} |"


if __name__ == "__main__":
    sys.exit(main())
