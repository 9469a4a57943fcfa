"""Score against training steps: evaluate a run's saved checkpoints under the paper protocol.

  python bench/training_curve.py --run runs/large_hl --maze large --every 4000 --episodes 30 \
      [--segments linear] [--out results/maze2d_large_hl_curve.json]

Every `step_*.safetensors` of the run whose step is a multiple of --every is evaluated on the same
seeded episodes (plan once, DDPM through all steps). Writes OUT (JSON), OUT with .md and a .png
of the curve with standard-error bars and, when given, the paper's score as a line.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import PAPER_SCORES, Maze2DEvalConfig, evaluate  # noqa: E402
from diffuser_core.plotting import save_figure  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="training folder with step_*.safetensors")
    parser.add_argument("--maze", required=True, choices=("umaze", "medium", "large"))
    parser.add_argument("--every", type=int, default=4000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--segments", default="linear", choices=("linear", "hermite"))
    parser.add_argument("--max-step", type=int, default=None, help="ignore checkpoints past this step")
    parser.add_argument("--out")
    return parser


def run_checkpoints(run: Path, every: int, max_step: int | None) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints at multiples of `every`, in order."""
    found = []
    for path in run.glob("step_*.safetensors"):
        step = int(re.search(r"step_(\d+)", path.name).group(1))
        if step % every == 0 and (max_step is None or step <= max_step):
            found.append((step, path))
    if not found:
        raise SystemExit(f"training_curve: no checkpoints at multiples of {every} in {run}")
    return sorted(found)


def plot(rows: list[dict], maze: str) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    ax = figure.subplots()
    ax.errorbar([r["step"] for r in rows], [r["score"] for r in rows], yerr=[r["standard_error"] for r in rows],
                marker="o", capsize=3, label="hierarchical Diffuser (this project)")
    paper = PAPER_SCORES[(maze, False)][0]
    ax.axhline(paper, color="tab:red", ls="--", lw=1, label=f"paper's Diffuser ({paper})")
    ax.set(xlabel="training steps", ylabel="normalized score", title=f"Maze2D {maze}: plan once, DDPM")
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    rows, paths = [], []
    for step, path in run_checkpoints(Path(args.run), args.every, args.max_step):
        config = Maze2DEvalConfig(maze=args.maze, episodes=args.episodes, seed=0, segments=args.segments)
        summary = evaluate(path, config, progress=False)
        rows.append({"step": step, "checkpoint": str(path), "score": summary.mean_score,
                     "standard_error": summary.standard_error, "success_rate": summary.success_rate})
        paths.append(path)
        print(f"step {step}: {summary.mean_score:.1f} ± {summary.standard_error:.1f}", flush=True)
    out = Path(args.out or ROOT / "results" / f"maze2d_{args.maze}_hl_curve.json")
    record = {"maze": args.maze, "episodes": args.episodes, "seed": 0, "segments": args.segments,
              "protocol": "reference (plan once, open loop)", "rows": rows,
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **provenance(paths)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# Maze2D {args.maze}: score against training steps (hierarchical)", "",
             "| step | score (mean ± s.e.) | success |", "|---|---|---|"]
    lines += [f"| {r['step']} | {r['score']:.1f} ± {r['standard_error']:.1f} | {100 * r['success_rate']:.0f}% |"
              for r in rows]
    lines += ["", f"- {args.episodes} episodes per point, seed 0, plan once (DDPM, all steps), "
              f"{args.segments} segments; the same episodes at every point",
              f"- command: `{record['command']}`", f"- git {record['git_commit'][:12]}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    save_figure(plot(rows, args.maze), out.with_suffix(".png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
