"""IQL (Kostrikov et al. 2021) on the same Maze2D data and environment, with d3rlpy, as the seed's
baseline row: trained on the data's sparse reward of the maze's fixed goal (as the paper's
baselines are), then evaluated on the same seeded episodes as Diffuser, single goal and Multi2D.

  pip install -r bench/requirements-baselines.txt     # optional; the demo and tests do not need it
  python bench/iql_baseline.py --maze medium --steps 30000 --episodes 100

Writes results/baseline_iql_<maze>.json + .md (both settings).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance  # noqa: E402
from diffuser_core.data.d4rl_hdf5 import load_d4rl_hdf5  # noqa: E402
from diffuser_core.scores import episode_seeds, standard_error  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402

PAPER_IQL = {("umaze", False): 47.4, ("medium", False): 34.9, ("large", False): 58.6,
             ("umaze", True): 24.8, ("medium", True): 12.1, ("large", True): 13.9}  # the Diffuser paper's Table 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maze", default="medium", choices=("umaze", "medium", "large"))
    parser.add_argument("--dataset", help="D4RL-layout hdf5 (default data/maze2d-<maze>-v1.hdf5)")
    parser.add_argument("--steps", type=int, default=30000, help="IQL gradient steps")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="default results/baseline_iql_<maze>.json")
    return parser


def train_iql(path: Path, steps: int, seed: int):
    """IQL with d3rlpy's defaults (expectile 0.7, temperature 3) on the file's transitions."""
    import d3rlpy

    data = load_d4rl_hdf5(path)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=np.asarray(data["observations"], dtype=np.float32),
        actions=np.asarray(data["actions"], dtype=np.float32),
        rewards=np.asarray(data["rewards"], dtype=np.float32),
        terminals=np.asarray(data["terminals"], dtype=np.float32),
        timeouts=np.asarray(data["timeouts"], dtype=np.float32))
    d3rlpy.seed(seed)
    algorithm = d3rlpy.algos.IQLConfig().create(device="cpu:0")
    algorithm.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, show_progress=False, save_interval=steps + 1,
                  experiment_name="iql", with_timestamp=False, logger_adapter=d3rlpy.logging.NoopAdapterFactory())
    return algorithm


def evaluate_policy(algorithm, maze: str, multi_goal: bool, episodes: int, seed: int) -> dict:
    """Normalized score over the same seeded episodes as bench/eval_maze2d.py."""
    env = Maze2DEnv(maze, multi_goal=multi_goal)
    scores, reached = [], []
    for episode_seed in episode_seeds(seed, episodes):
        observation, total = env.reset(seed=episode_seed), 0.0
        for _ in range(env.max_episode_steps):
            action = algorithm.predict(observation[None].astype(np.float32))[0]
            observation, reward, _, _ = env.step(np.clip(action, -1.0, 1.0))
            total += reward
        scores.append(env.normalized_score(total))
        reached.append(total > 0)
    return {"multi_goal": multi_goal, "episodes": episodes, "mean_normalized_score": float(np.mean(scores)),
            "standard_error": standard_error(scores), "success_rate": float(np.mean(reached)),
            "paper_iql": PAPER_IQL[(maze, multi_goal)]}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    path = Path(args.dataset or ROOT / "data" / f"maze2d-{args.maze}-v1.hdf5")
    started = time.perf_counter()
    algorithm = train_iql(path, args.steps, args.seed)
    trained_s = time.perf_counter() - started
    rows = [evaluate_policy(algorithm, args.maze, multi, args.episodes, args.seed) for multi in (False, True)]
    record = {"maze": args.maze, "algorithm": "IQL (d3rlpy defaults)", "training_steps": args.steps,
              "training_wall_s": trained_s, "dataset": str(path), "seed": args.seed, "rows": rows,
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **provenance([path])}
    out = Path(args.out or ROOT / "results" / f"baseline_iql_{args.maze}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# IQL baseline, Maze2D {args.maze}", "", "| setting | IQL here | paper's IQL | success | episodes |",
             "|---|---|---|---|---|"]
    lines += [f"| {'Multi2D' if r['multi_goal'] else 'Maze2D'} | {r['mean_normalized_score']:.1f} ± "
              f"{r['standard_error']:.1f} | {r['paper_iql']} | {100 * r['success_rate']:.0f}% | {r['episodes']} |" for r in rows]
    lines += ["", f"- {args.steps} IQL steps (d3rlpy {__import__('d3rlpy').__version__} defaults), "
              f"{trained_s:.0f} s on one CPU thread; the paper's IQL trained far longer",
              f"- data: `{path}` (sha256 {record['checkpoint_sha256'][str(path)][:12]}...), seed {args.seed}",
              f"- command: `{record['command']}`", f"- git {record['git_commit'][:12]}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
