"""Planner soak test: memory, threads and open files stay flat over many replans.

  python bench/planner_soak.py [--checkpoint checkpoints/maze2d_umaze.safetensors] \
      [--replans 10000] [--warmup-episodes 1] [--steps 8] [--warm-start-steps 8] [--threads 1] \
      [--out results/perf_soak.json]

Drives the fast planner (DDIM, warm starts) closed loop in Maze2D with a replan at EVERY env step,
one seeded episode after another, and compares the process's resident memory (RSS), OS thread
count and open file descriptors after the warm-up episodes with those at the end (read from Linux
/proc). Targets: RSS growth < 5 %, no more threads or open files than after the warm-up. Writes OUT
(JSON) and its section of results/perf.md (next to OUT).
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

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
from diffuser_core.planning.planner import Planner  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, episode_seeds, evaluate_episode  # noqa: E402

RSS_GROWTH_TARGET = 5.0  # % over the soak


@dataclass(frozen=True)
class ProcessSnapshot:
    """This process's resident memory (now and peak, MB), OS threads and open file descriptors."""

    replans: int
    rss_mb: float
    peak_rss_mb: float
    threads: int
    open_files: int

    @classmethod
    def take(cls, replans: int) -> "ProcessSnapshot":
        """Read /proc/self after a garbage collection (Linux only: ValueError elsewhere)."""
        status_path = Path("/proc/self/status")
        if not status_path.exists():
            raise ValueError("planner_soak needs Linux /proc to read memory, threads and open files")
        gc.collect()
        fields = dict(line.split(":", 1) for line in status_path.read_text().splitlines() if ":" in line)
        kilobytes = lambda name: float(fields[name].split()[0])  # noqa: E731 - "VmRSS:  1234 kB"
        return cls(replans, kilobytes("VmRSS") / 1024, kilobytes("VmHWM") / 1024,
                   int(fields["Threads"]), len(os.listdir("/proc/self/fd")))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; defaults are the full soak (10 000 replans)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "maze2d_umaze.safetensors"))
    parser.add_argument("--maze", default="umaze", choices=("umaze", "medium", "large"))
    parser.add_argument("--replans", type=int, default=10_000, help="replans after the warm-up")
    parser.add_argument("--warmup-episodes", type=int, default=1, help="episodes before the first snapshot")
    parser.add_argument("--episode-steps", type=int, default=None,
                        help="env steps per episode (default: the maze's limit)")
    parser.add_argument("--steps", type=int, default=8, help="DDIM calls of a cold plan")
    parser.add_argument("--warm-start-steps", type=int, default=8, help="warm-start re-noise depth k")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "perf_soak.json"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    """Parse options, soak the planner, write JSON and markdown."""
    return run_cli(build_parser(), argv, __file__, run, check_args)


def check_args(args) -> None:
    """ValueError with a clear message for unusable option values."""
    require_at_least_one(args, ("replans", "warmup_episodes", "steps", "warm_start_steps", "threads"))
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {args.checkpoint}")


def run(args, command: str) -> dict:
    """Warm up, snapshot, replan at every step for --replans replans, snapshot again."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    tqdm.monitor_interval = 0  # no tqdm monitor thread: the soak counts this process's threads
    config = Maze2DEvalConfig(maze=args.maze, episodes=1, seed=args.seed, sampler="ddim",
                        denoising_steps=args.steps, replan_every=1, warm_start=True,
                        warm_start_steps=args.warm_start_steps, episode_steps=args.episode_steps)
    planner = Planner.from_checkpoint(args.checkpoint, config.planner_config())
    env = Maze2DEnv(args.maze)
    steps_per_episode = args.episode_steps or env.max_episode_steps
    soak_episodes = math.ceil(args.replans / steps_per_episode)
    seeds = iter(episode_seeds(args.seed, args.warmup_episodes + soak_episodes))
    for _ in range(args.warmup_episodes):
        evaluate_episode(env, planner, config, next(seeds))
    trace, plan_ms = [ProcessSnapshot.take(0)], []
    for episode in tqdm(range(soak_episodes), desc="soak", disable=args.quiet):
        plan_ms += evaluate_episode(env, planner, config, next(seeds)).plan_ms  # result dropped here
        trace.append(ProcessSnapshot.take((episode + 1) * steps_per_episode))
    record = {"benchmark": "soak", "command": command, "machine": machine_info("cpu"), "seed": args.seed,
              "checkpoint": args.checkpoint,
              "settings": {"sampler": "ddim", "steps": args.steps, "warm_start_steps": args.warm_start_steps,
                           "replan_every": 1, "episode_steps": steps_per_episode,
                           "warmup_episodes": args.warmup_episodes},
              "replans": len(plan_ms), "plan_ms_median": float(np.median(plan_ms)),
              "plan_ms_p95": float(np.percentile(plan_ms, 95)),
              "before": asdict(trace[0]), "after": asdict(trace[-1]),
              "trace": [asdict(snapshot) for snapshot in trace]}
    record["targets"] = [t.to_dict() for t in soak_targets(trace[0], trace[-1])]
    record["wall_time_s"] = time.perf_counter() - started
    out = Path(args.out)
    write_json(out, record)
    update_section(out.with_name("perf.md"), "soak", markdown_section(record))
    return record


def soak_targets(before: ProcessSnapshot, after: ProcessSnapshot) -> list[Target]:
    """RSS growth under 5 %, and no growth in OS threads or open file descriptors."""
    growth = 100 * (after.rss_mb - before.rss_mb) / before.rss_mb
    return [
        Target("planner memory flat", f"RSS growth < {RSS_GROWTH_TARGET:.0f} % over the soak",
               f"{growth:+.2f} % ({before.rss_mb:.1f} -> {after.rss_mb:.1f} MB over {after.replans} replans)",
               growth < RSS_GROWTH_TARGET),
        Target("no thread leak", "OS threads after <= before", f"{before.threads} -> {after.threads}",
               after.threads <= before.threads),
        Target("no file leak", "open file descriptors after <= before",
               f"{before.open_files} -> {after.open_files}", after.open_files <= before.open_files),
    ]


def markdown_section(record: dict) -> str:
    """The 'soak' section of perf.md: targets, the snapshots, command and machine."""
    settings, before, after = record["settings"], record["before"], record["after"]
    rss_trace = ", ".join(f"{snapshot['rss_mb']:.0f}" for snapshot in record["trace"])
    lines = [
        "## Planner soak (`bench/planner_soak.py`)", "",
        f"{record['replans']} replans of the fast planner (DDIM {settings['steps']}, warm start "
        f"k={settings['warm_start_steps']}), one at every env step, closed loop in seeded "
        f"{settings['episode_steps']}-step episodes, after {settings['warmup_episodes']} warm-up "
        f"episode(s); plan ms median {record['plan_ms_median']:.1f}, p95 {record['plan_ms_p95']:.1f}.", "",
        "| | replans | RSS MB | peak RSS MB | OS threads | open files |", "|---|---|---|---|---|---|",
        *(f"| {name} | {s['replans']} | {s['rss_mb']:.1f} | {s['peak_rss_mb']:.1f} | {s['threads']} "
          f"| {s['open_files']} |" for name, s in (("after warm-up", before), ("end", after))), "",
        *targets_table([Target(**t) for t in record["targets"]]), "",
        f"- RSS after the warm-up and after each soak episode (MB): {rss_trace}",
        f"- command: `{record['command']}`", f"- machine: {machine_line(record['machine'])}",
        f"- seed {record['seed']}; wall time {record['wall_time_s']:.0f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
