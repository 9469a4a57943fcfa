"""Evaluate a Kuka block-stacking Diffuser on the paper's three tasks and write results JSON + markdown.

  python bench/eval_kuka.py --checkpoint checkpoints/kuka_stack.safetensors \
      [--modes unconditional conditional rearrange] [--episodes 100] [--seed 0] \
      [--sampler ddim|ddpm] [--steps N] [--guide-scale A] [--out results/kuka.json]

One model, three tasks by test-time conditions only (diffuser_core/envs/kuka_eval.py has the
protocol). Writes OUT (JSON) and OUT with .md: the paper's Table 3 numbers (labelled as the paper's)
beside the measured ones, with the command, machine and seed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, machine_line  # noqa: E402
from diffuser_core.envs.kuka_eval import PAPER_SCORES, KukaEvalConfig, evaluate  # noqa: E402
from diffuser_core.envs.kuka_tasks import EVAL_MODES  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "kuka_stack.safetensors"))
    parser.add_argument("--modes", nargs="+", default=list(EVAL_MODES), choices=EVAL_MODES)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm"))
    parser.add_argument("--steps", type=int, default=None, help="DDIM denoising steps (default all)")
    parser.add_argument("--guide-scale", type=float, default=KukaEvalConfig.guide_scale)
    parser.add_argument("--stages", type=int, default=KukaEvalConfig.stages, help="plans per episode")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "results" / "kuka.json"))
    parser.add_argument("--quiet", action="store_true")
    return parser


def markdown(records: list[dict], command: str, machine: dict) -> str:
    lines = ["# Kuka block stacking (paper §5.3, Table 3)", "",
             "| task | paper: Diffuser (Janner et al. 2022, Table 3) | measured (mean ± s.e.) | episodes "
             "| final-scene score | full successes |",
             "|---|---|---|---|---|---|"]
    for record in records:
        paper = record["paper_score"]
        lines.append(f"| {record['config']['mode']} | {paper['mean']} ± {paper['standard_error']} "
                     f"| {record['mean_score']:.1f} ± {record['standard_error']:.1f} | {record['episodes']} "
                     f"| {record['mean_final_score']:.1f} | {100 * record['full_success_rate']:.0f} % |")
    first = records[0]
    lines += ["", f"- checkpoint: `{Path(first['checkpoint']).name}` (training step {first['checkpoint_step']})",
              "- score: goal relations satisfied / total × 100, counted during execution as the reference "
              "does; final-scene score: the same on the last state only",
              f"- command: `{command}`", f"- machine: {machine_line(machine)}",
              f"- seed {first['config']['seed']}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        configs = [KukaEvalConfig(mode=mode, episodes=args.episodes, seed=args.seed, sampler=args.sampler,
                                  denoising_steps=args.steps, guide_scale=args.guide_scale, stages=args.stages,
                                  device=args.device) for mode in args.modes]
        if not Path(args.checkpoint).is_file():
            raise ValueError(f"checkpoint not found: {args.checkpoint}")
        records = [evaluate(args.checkpoint, config, progress=not args.quiet).to_dict() for config in configs]
    except ValueError as error:
        print(f"eval_kuka: {error}", file=sys.stderr)
        return 2
    command, machine = command_line(__file__, argv), machine_info(args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "machine": machine, "results": records}, indent=2))
    out.with_suffix(".md").write_text(markdown(records, command, machine))
    for record in records:
        print(f"{record['config']['mode']}: {record['mean_score']:.1f} ± {record['standard_error']:.1f} over "
              f"{record['episodes']} episodes (paper: {PAPER_SCORES[record['config']['mode']][0]})")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
