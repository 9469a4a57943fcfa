"""The map-aware loop's choices, measured one at a time against the shipped scenario on the same
episodes: replanning at every tick instead of on deviation, no retries toward nearer route points,
one candidate instead of the scenario's batch, and no map at all. Each row: score, success, steps to
the goal, episodes touching a wall, and the planning time per replan (every attempt included).
Writes results/maze2d_<maze>_map_choices.json + .md.

  python bench/map_loop_choices.py --scenario maze2d_large --episodes 30 --seed 1
"""
from __future__ import annotations

import argparse
import json
import sys
from argparse import Namespace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance, write_report  # noqa: E402
from bench.eval_maze2d import scenario_eval_config  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import evaluate  # noqa: E402

CHOICES = {  # row -> the planner parameters it changes
    "shipped scenario": {},
    "replan at every tick (warm start)": {"replan_deviation": 0.0},
    "no retries toward nearer route points": {"route_retries": 0},
    "one candidate per plan": {"candidates": 1},
    "no map (only cells beyond the walls count)": {"whole_map": False},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="maze2d_large")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="not the evaluation's seed 0: these choices are tuning")
    parser.add_argument("--choices", nargs="+", choices=list(CHOICES), default=list(CHOICES))
    parser.add_argument("--episode-steps", type=int, help="cut episodes short (smoke tests only)")
    parser.add_argument("--out", help="default results/<scenario>_map_choices.json")
    return parser


def row(name: str, changes: dict, args) -> dict:
    """One choice evaluated: its headline numbers and the planning time per replan."""
    assignments = [f"{key}={json.dumps(value)}" for key, value in changes.items()]
    config, checkpoint = scenario_eval_config(args.scenario, Namespace(
        episodes=args.episodes, seed=args.seed, multi=False, episode_steps=args.episode_steps, device="cpu",
        set=assignments))
    summary = evaluate(checkpoint, config, progress=False)
    record = summary.to_dict()
    print(f"{name}: {record['mean_normalized_score']:.1f} ± {record['standard_error']:.1f}, success "
          f"{100 * record['success_rate']:.0f} %, plan {record['plan_ms_median']:.0f} ms median", flush=True)
    return {"choice": name, "changes": changes, "checkpoint": checkpoint, **{key: record[key] for key in (
        "episodes", "mean_normalized_score", "standard_error", "success_rate", "mean_steps_to_goal",
        "episodes_touching_walls", "plan_calls", "plan_ms_median", "plan_ms_p95")},
            "candidates": config.avoidance.candidates}


def markdown(record: dict) -> str:
    lines = [f"# The map-aware loop's choices, `{record['scenario']}` (`bench/map_loop_choices.py`)", "",
             f"{record['episodes']} episodes, seed {record['seed']} (tuning episodes, not the evaluation's seed 0); "
             "planning time per replan, every attempt included, one thread.", "",
             "| choice | score | success | mean steps to the goal | episodes touching a wall | candidates | "
             "plan ms median / p95 |", "|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        steps = f"{r['mean_steps_to_goal']:.0f}" if r["mean_steps_to_goal"] is not None else "–"
        lines.append(f"| {r['choice']} | {r['mean_normalized_score']:.1f} ± {r['standard_error']:.1f} | "
                     f"{100 * r['success_rate']:.0f} % | {steps} | {r['episodes_touching_walls']} | {r['candidates']} | "
                     f"{r['plan_ms_median']:.0f} / {r['plan_ms_p95']:.0f} |")
    lines += ["", f"- command: `{record['command']}`; git commit {record['git_commit'][:12]}",
              f"- machine: {record['machine']['platform']}, {record['machine']['cpu_count']} CPUs"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(1)
    p = planner_parameters(args.scenario)
    rows = [row(name, CHOICES[name], args) for name in args.choices]
    record = {"benchmark": "map_loop_choices", "scenario": args.scenario, "episodes": args.episodes,
              "seed": args.seed, "rows": rows, "command": command_line(__file__, argv),
              "machine": machine_info("cpu"), **provenance([resolve_data_path(p["checkpoint"])])}
    write_report(args.out or ROOT / "results" / f"{args.scenario}_map_choices.json", record, markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
