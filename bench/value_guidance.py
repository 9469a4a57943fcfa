"""Learned value guidance end to end (paper §3.2) against goal inpainting, with the same model.

  python bench/value_guidance.py [--maze umaze] [--checkpoint checkpoints/maze2d_umaze.safetensors]
      [--value checkpoints/maze2d_umaze_value.safetensors] [--episodes 100] [--seed 0]
      [--scales 30 100 300] [--guide-steps 1] [--out results/value_guidance.json]

Three ways to plan from the reset state to D4RL's goal, on the same episodes (seeds) with the same
diffusion model, in the paper's Maze2D protocol (plan once with DDPM, track the plan open loop):
- goal inpainting: the goal state is written into the plan's last step (the paper's Maze2D setting);
- start only: no goal at all (the contrast: where the model wanders without one);
- value guidance: no goal; every denoising step follows scale * Sigma * grad J, J the learned value
  model's predicted return of D4RL's sparse reward (experiments/maze2d_umaze_value.yaml).
Writes OUT (JSON), OUT with .md and OUT with .png (the first plan of one episode in each setting).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, machine_line, provenance, write_json  # noqa: E402
from diffuser_core.plotting import draw_plan, draw_walls, save_figure  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, evaluate  # noqa: E402
from diffuser_core.tasks.maze2d.layouts import CELL_SQUARE_OFFSET  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maze", default="umaze")
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "maze2d_umaze.safetensors"))
    parser.add_argument("--value", default=str(ROOT / "checkpoints" / "maze2d_umaze_value.safetensors"))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", type=float, nargs="+", default=(30.0, 100.0, 300.0),
                        help="guide scales alpha to measure (one row each)")
    parser.add_argument("--guide-steps", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "results" / "value_guidance.json"))
    return parser


def settings(args) -> list[tuple[str, Maze2DEvalConfig]]:
    """(name, evaluation config) of every row, all on the same episodes."""
    base = Maze2DEvalConfig(maze=args.maze, episodes=args.episodes, seed=args.seed, sampler="ddpm")
    rows = [("goal inpainting", base), ("start only (no goal, no guide)", replace(base, goal_inpainting=False))]
    rows += [(f"value guidance, scale {scale:g}", replace(base, goal_inpainting=False, value_checkpoint=args.value,
                                                          guide_scale=scale, n_guide_steps=args.guide_steps))
             for scale in args.scales]
    return rows


def markdown(record: dict) -> str:
    lines = [f"# Learned value guidance against goal inpainting (Maze2D {record['maze']}, same model)", "",
             "| setting | normalized score (mean ± s.e.) | success | episodes |", "|---|---|---|---|"]
    lines += [f"| {row['setting']} | {row['mean_normalized_score']:.1f} ± {row['standard_error']:.1f} | "
              f"{100 * row['success_rate']:.0f} % | {row['episodes']} |" for row in record["results"]]
    sha = record["checkpoint_sha256"]
    lines += ["", f"- protocol: {record['results'][0]['protocol']}; DDPM, all diffusion steps; "
              f"{record['guide_steps']} guide step(s) per denoising step; seed {record['seed']}",
              "- picture: the first plan of episode 0 in each setting (o start, * end, X the goal)",
              "- value: J = the value model's predicted discounted return (discount 0.99) of D4RL's sparse reward "
              "(1 within 0.5 m of the goal), trained on trajectories noised by the diffusion schedule",
              f"- diffusion checkpoint sha256 {sha[record['checkpoint']][:12]}..., value checkpoint sha256 "
              f"{sha[record['value']][:12]}...; git commit {record['git_commit'][:12]}",
              f"- command: `{record['command']}`", f"- machine: {machine_line(record['machine'])}"]
    return "\n".join(lines) + "\n"


def save_picture(summaries, names, maze: str, path: Path) -> None:
    """The first plan of the first episode in each setting, over the maze."""
    from matplotlib.figure import Figure

    env = Maze2DEnv(maze)
    rows, columns = env.layout.shape
    extent = (-0.5 + CELL_SQUARE_OFFSET, rows - 0.5 + CELL_SQUARE_OFFSET,
              -0.5 + CELL_SQUARE_OFFSET, columns - 0.5 + CELL_SQUARE_OFFSET)
    figure = Figure(figsize=(3.6 * len(summaries), 3.8))
    for ax, summary, name in zip(figure.subplots(1, len(summaries), squeeze=False)[0], summaries, names):
        episode = summary.episodes[0]
        draw_walls(ax, env.layout, extent)
        draw_plan(ax, episode.first_plan)
        ax.plot(*episode.goal, "kX", markersize=10, label="goal")
        ax.set(title=f"{name}\nscore {episode.normalized_score:.0f}", aspect="equal", xticks=[], yticks=[],
               xlim=extent[:2], ylim=extent[2:])
    save_figure(figure, path)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    origin = provenance([args.checkpoint, args.value])
    rows = settings(args)
    summaries = [evaluate(args.checkpoint, config, progress=False) for _, config in rows]
    results = [{"setting": name, "mean_normalized_score": s.mean_score, "standard_error": s.standard_error,
                "success_rate": s.success_rate, "episodes": len(s.episodes), "protocol": config.protocol,
                "guide_scale": config.guide_scale if config.value_checkpoint else None,
                "per_episode_scores": [e.normalized_score for e in s.episodes]}
               for (name, config), s in zip(rows, summaries)]
    record = {"benchmark": "value_guidance", "maze": args.maze, "checkpoint": args.checkpoint, "value": args.value,
              "seed": args.seed, "guide_steps": args.guide_steps, "command": command_line(__file__, argv),
              "machine": machine_info("cpu"), **origin, "results": results}
    out = write_json(args.out, record)
    out.with_suffix(".md").write_text(markdown(record))
    save_picture(summaries, [name for name, _ in rows], args.maze, out.with_suffix(".png"))
    for row in results:
        print(f"{row['setting']}: {row['mean_normalized_score']:.1f} ± {row['standard_error']:.1f}, "
              f"success {100 * row['success_rate']:.0f} %")
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
