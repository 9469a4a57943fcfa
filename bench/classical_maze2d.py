"""The classical limits of a Maze2D / Multi2D setting, on the same episode seeds as the diffusion
planner's evaluations: D4RL's waypoint expert (the data's own controller), and the shortest free
route on the maze's map timed at a speed profile and tracked by the point mass's rule in the
scenario's receding loop (no diffusion). Writes results/maze2d_<maze>[_multi]_classical.json + .md.

  python bench/classical_maze2d.py --maze large --episodes 100 --seed 0 [--multi]
      [--speed 5.0 --acceleration 5.0]   # the route's timing and its replanning, chosen on seed 1
"""
from __future__ import annotations

import argparse
import sys
import time
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance, write_report  # noqa: E402
from bench.eval_maze2d import scenario_eval_config  # noqa: E402
from diffuser_core.scores import episode_seeds, standard_error  # noqa: E402
from diffuser_core.tasks.maze2d import PAPER_SCORES  # noqa: E402
from diffuser_core.tasks.maze2d.baselines import expert_episode, route_planner  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import evaluate_episode  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maze", default="large", choices=("umaze", "medium", "large"))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multi", action="store_true", help="Multi2D: a random goal cell each episode")
    parser.add_argument("--speed", type=float, default=5.0, help="m/s along the route (chosen on seed 1)")
    parser.add_argument("--acceleration", type=float, default=5.0, help="m/s^2 speeding up and slowing down")
    parser.add_argument("--out", help="default results/maze2d_<maze>[_multi]_classical.json")
    return parser


def summary(name: str, episodes: list, started: float) -> dict:
    """A row: score ± s.e., success, steps to the goal, wall contact, per episode."""
    scores = [e.normalized_score for e in episodes]
    reached = [e.steps_to_goal for e in episodes if e.reached]
    return {"planner": name, "episodes": len(episodes), "mean_normalized_score": float(np.mean(scores)),
            "standard_error": standard_error(scores), "success_rate": float(np.mean([e.reached for e in episodes])),
            "mean_steps_to_goal": float(np.mean(reached)) if reached else None,
            "episodes_touching_walls": int(sum(e.wall_contact_steps > 0 for e in episodes)),
            "wall_time_s": time.perf_counter() - started, "per_episode": [e.to_dict() for e in episodes]}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    env = Maze2DEnv(args.maze, multi_goal=args.multi)
    seeds = episode_seeds(args.seed, args.episodes)
    started = time.perf_counter()
    rows = [summary("D4RL waypoint expert (the data's controller)", [expert_episode(env, s) for s in seeds], started)]
    config, _ = scenario_eval_config(f"maze2d_{args.maze}", Namespace(episodes=args.episodes, seed=args.seed,
                                                                      multi=args.multi, episode_steps=None, device="cpu"))
    # replanned when 0.5 m off the plan, and every second: a lagging robot gets a plan from where it is
    config = replace(config, loop=replace(config.loop, shrink_horizon=False, replan_deviation=0.5, max_plan_age=2.0))
    planner = route_planner(args.maze, args.speed, args.acceleration)
    started = time.perf_counter()
    episodes = [evaluate_episode(env, planner, config, s) for s in seeds]
    rows.append(summary(f"shortest free route at {args.speed:g} m/s, {args.acceleration:g} m/s^2, tracked in the "
                        f"loop, replanned 0.5 m off the plan or every 1 s", episodes, started))
    paper = PAPER_SCORES[(args.maze, args.multi)]
    record = {"benchmark": "classical_maze2d", "maze": args.maze, "multi_goal": args.multi, "seed": args.seed,
              "rows": rows, "loop": config.protocol, "paper_score": {"mean": paper[0], "standard_error": paper[1]},
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **provenance([])}
    for row in rows:
        print(f"{row['planner']}: {row['mean_normalized_score']:.1f} ± {row['standard_error']:.1f}, "
              f"success {100 * row['success_rate']:.0f} %")
    write_report(args.out or ROOT / "results" / f"maze2d_{args.maze}{'_multi' if args.multi else ''}_classical.json",
                 record, markdown(record))
    return 0


def markdown(record: dict) -> str:
    setting = f"{'Multi2D' if record['multi_goal'] else 'Maze2D'} {record['maze']}"
    lines = [f"# Classical limits, {setting} (`bench/classical_maze2d.py`)", "",
             "| planner | normalized score | success | mean steps to the goal | episodes touching a wall | episodes |",
             "|---|---|---|---|---|---|"]
    for row in record["rows"]:
        steps = f"{row['mean_steps_to_goal']:.0f}" if row["mean_steps_to_goal"] is not None else "–"
        lines.append(f"| {row['planner']} | {row['mean_normalized_score']:.1f} ± {row['standard_error']:.1f} | "
                     f"{100 * row['success_rate']:.0f} % | {steps} | {row['episodes_touching_walls']} | "
                     f"{row['episodes']} |")
    lines += ["", f"Paper (Janner et al. 2022, Table 1), Diffuser: {record['paper_score']['mean']} ± "
              f"{record['paper_score']['standard_error']}. Loop: {record['loop']}.", "",
              f"- command: `{record['command']}`; git commit {record['git_commit'][:12]}; seed {record['seed']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
