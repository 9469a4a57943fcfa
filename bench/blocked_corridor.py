"""Test-time obstacles: the Medium maze with a corridor blocked where another route exists, guided
against unguided planning with the same model, seeds and starts, in the shipped scenario's loop.

  python bench/blocked_corridor.py [--scenario maze2d_medium] [--episodes 100] [--blocked 3 4]
      [--episode-steps 1000] [--weight W] [--candidates N] [--route-reach M] [--route-horizon H]
      [--latency-candidates 8 16] [--no-shield-row] [--out results/blocked_corridor.json]

The blocked cell is a keep-out zone the mass could drive through (not a wall), so entries can be
counted: an episode succeeds when it reaches D4RL's goal, and every step inside the blocked cell is an
entry. Starts are the open cells from which the blocked corridor is the shortest way to the goal.
Guided: the scenario's obstacle avoidance, as the planner node runs it on a `costmap` (the
options override it): the costmap guide (route and clearance costs of the walls plus the blocked
cell, every denoising step), `candidates` plans in one batch (the cheapest that keeps off the blocked
cell kept), plans to the free route's waypoint `route_reach` m ahead and, when the scenario sets
`costmap_shield`, the keep-out shield that brakes the mass before it reaches the blocked cell. Unguided:
the same model and loop, planning straight to the goal. With the shield, two more rows part its share
from guidance's: guided without the shield, and unguided with it. The detour is about 12 m, so episodes last `episode_steps`
(D4RL's Medium limit, 600, is shorter than the detour takes). Also times cold plans with 1 and with
each of `latency_candidates` candidates, unguided and guided (the target: N = 8 at most twice one's
latency). Writes OUT (JSON), OUT with .md, and OUT with .png (one
episode of each).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, machine_line, provenance  # noqa: E402
from bench.eval_maze2d import scenario_eval_config  # noqa: E402
from diffuser_core.plotting import draw_plan, draw_walls, save_figure  # noqa: E402
from diffuser_core.scores import episode_seeds, standard_error  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import _load_planner, evaluate_episode, obstacle_costmap  # noqa: E402
from diffuser_core.tasks.maze2d.layouts import CELL_SQUARE_OFFSET  # noqa: E402
from diffuser_core.tasks.maze2d.point_mass import PointMass  # noqa: E402

STARTS = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 2), (3, 3))  # Medium: the top-left rooms, west of (3, 4)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="maze2d_medium")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocked", type=int, nargs=2, default=(3, 4), metavar=("I", "J"))
    parser.add_argument("--episode-steps", type=int, default=1000)
    parser.add_argument("--weight", type=float, help="costmap guide weight (J = -weight * cost); default: the scenario's")
    parser.add_argument("--candidates", type=int, help="default: the scenario's")
    parser.add_argument("--route-reach", type=float, help="m; default: the scenario's")
    parser.add_argument("--route-horizon", type=int, help="plan steps; default: the scenario's")
    parser.add_argument("--no-shield-row", action="store_true",
                        help="skip the rows that take the keep-out shield off the guided loop and put it on the unguided one")
    parser.add_argument("--latency-candidates", type=int, nargs="+", default=(8, 16))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "results" / "blocked_corridor.json"))
    return parser


def run_setting(name: str, config, checkpoint: str, episodes: int, seed: int) -> dict:
    """Every episode of one setting (same seeds and starts for each)."""
    planner, step = _load_planner(checkpoint, config)
    env = Maze2DEnv(config.maze)
    started, results = time.perf_counter(), []
    for index, episode_seed in enumerate(episode_seeds(seed, episodes)):
        results.append(evaluate_episode(env, planner, config, episode_seed, start_cell=STARTS[index % len(STARTS)]))
    reached = np.array([r.reached for r in results])
    entered = np.array([r.blocked_steps > 0 for r in results])
    scores = [r.normalized_score for r in results]
    return {"setting": name, "episodes": episodes, "success_rate": float(reached.mean()),
            "episodes_entering": int(entered.sum()), "blocked_steps": int(sum(r.blocked_steps for r in results)),
            "success_without_entry": float((reached & ~entered).mean()),
            "mean_normalized_score": float(np.mean(scores)), "standard_error": standard_error(scores),
            "plan_ms_median": float(np.median(np.concatenate([r.plan_ms for r in results]))),
            "checkpoint_step": step, "wall_time_s": time.perf_counter() - started,
            "config": {**asdict(config.avoidance), "episode_steps": config.episode_steps,
                       "obstacles": [list(c) for c in config.obstacles], "protocol": config.protocol},
            "per_episode": [r.to_dict() for r in results], "_episodes": results}


def plan_latency(config, checkpoint: str, counts, plans: int = 40) -> dict:
    """Median ms of cold plans from the start cells to the goal with 1 and with each of `counts`
    candidates in a batch, timed in turn plan by plan (so a slower spell of the machine hits all alike)."""
    planner, _ = _load_planner(checkpoint, config)
    goal = np.array([6.0, 6.0, 0.0, 0.0])
    costmap = obstacle_costmap(config.maze, config.obstacles)
    arguments = {count: PointMass(config.maze).surroundings(costmap, replace(config.avoidance, candidates=count))
                 .planning_arguments(goal, planner) for count in (1, *counts)}
    times = {count: [] for count in arguments}
    for index in range(plans):
        start = np.array([*Maze2DEnv.cell_to_xy(STARTS[index % len(STARTS)]), 0.0, 0.0])
        for count, planning in arguments.items():
            planner.reset()
            planner.generator.manual_seed(index)
            times[count].append(planner.plan(start, goal=goal, **planning).plan_time_ms)
    return {count: np.array(values) for count, values in times.items()}


def latency_rows(guided, checkpoint: str, counts) -> list[dict]:
    """Cold-plan latency with 1 and each of `counts` candidates, without and with the costmap guide:
    the medians, and the median of the plan-by-plan ratios."""
    rows = []
    for name, config in (("unguided", avoiding(guided, costmap_weight=0.0)), ("guided", guided)):
        times = plan_latency(config, checkpoint, counts)
        for count in counts:
            rows.append({"setting": name, "candidates": count, "plan_ms_one": float(np.median(times[1])),
                         "plan_ms_many": float(np.median(times[count])),
                         "ratio": float(np.median(times[count] / times[1])), "plans": len(times[1])})
    return rows


def markdown(record: dict) -> str:
    lines = [f"# Blocked corridor ({record['scenario']}, cell {tuple(record['blocked'])} blocked at test time)", "",
             "| setting | success | episodes entering the blocked cell | success without entering | "
             "score (mean ± s.e.) | plan ms (median) |", "|---|---|---|---|---|---|"]
    for result in record["results"]:
        lines.append(f"| {result['setting']} | {100 * result['success_rate']:.0f} % | {result['episodes_entering']} of "
                     f"{result['episodes']} | {100 * result['success_without_entry']:.0f} % | "
                     f"{result['mean_normalized_score']:.1f} ± {result['standard_error']:.1f} | "
                     f"{result['plan_ms_median']:.0f} |")
    lines += ["", "| cold plan latency | 1 candidate (ms) | N candidates (ms) | N | ratio, median of plan-by-plan ratios "
              "(target: at most 2) |",
              "|---|---|---|---|---|"]
    lines += [f"| {row['setting']} | {row['plan_ms_one']:.0f} | {row['plan_ms_many']:.0f} | {row['candidates']} | "
              f"{row['ratio']:.2f} |" for row in record["latency"]]
    lines += ["", "- target: at least 90 % success with no entry, guided; the unguided model is the contrast",
              f"- episodes of {record['results'][0]['config']['episode_steps']} steps (the detour is about 12 m; "
              "D4RL's Medium limit is 600)",
              f"- loop: {record['results'][0]['config']['protocol']}",
              f"- starts: {', '.join(map(str, STARTS))} in turn; goal: D4RL's (6, 6); seed {record['seed']}",
              f"- checkpoint sha256 {next(iter(record['checkpoint_sha256'].values()))[:12]}...; "
              f"git commit {record['git_commit'][:12]}",
              f"- command: `{record['command']}`", f"- machine: {machine_line(record['machine'])}"]
    return "\n".join(lines) + "\n"


def save_picture(results: list[dict], maze: str, blocked, path: Path) -> None:
    """The first episode of each setting over the walls, the blocked cell shaded."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    env = Maze2DEnv(maze)
    rows, columns = env.layout.shape
    extent = (-0.5 + CELL_SQUARE_OFFSET, rows - 0.5 + CELL_SQUARE_OFFSET,
              -0.5 + CELL_SQUARE_OFFSET, columns - 0.5 + CELL_SQUARE_OFFSET)
    figure = Figure(figsize=(4.2 * len(results), 4.2))
    for ax, result in zip(figure.subplots(1, len(results), squeeze=False)[0], results):
        episode = result["_episodes"][1]
        draw_walls(ax, env.layout, extent)
        x, y = env.cell_to_xy(blocked) + CELL_SQUARE_OFFSET
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color="tab:red", alpha=0.4))
        draw_plan(ax, episode.driven_xy)
        ax.set(title=f"{result['setting']}\n{'reached' if episode.reached else 'not reached'}, "
                     f"{episode.blocked_steps} steps blocked", aspect="equal", xticks=[], yticks=[],
               xlim=extent[:2], ylim=extent[2:])
    save_figure(figure, path)


def avoiding(config, **changes):
    """`config` with its avoidance settings changed."""
    return replace(config, avoidance=replace(config.avoidance, **changes))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    base, checkpoint = scenario_eval_config(args.scenario, argparse.Namespace(
        episodes=args.episodes, seed=args.seed, multi=False, episode_steps=None, device="cpu"))
    base = replace(base, obstacles=(tuple(args.blocked),), episode_steps=args.episode_steps)
    overrides = {field: value for field, value in (("costmap_weight", args.weight), ("candidates", args.candidates),
                                                   ("route_reach", args.route_reach),
                                                   ("route_horizon", args.route_horizon)) if value is not None}
    guided = avoiding(base, **overrides)
    unguided = avoiding(base, costmap_weight=0.0, candidates=1, route_reach=0.0, route_horizon=0, costmap_shield=False,
                        route_steps_per_m=0.0, route_retries=0)
    a = guided.avoidance
    name = (f"guided (weight {a.costmap_weight:g}, {a.candidates} candidates, route "
            f"{a.route_reach:g} m / {a.route_horizon} steps")
    settings = [("unguided", unguided), (f"{name}{', shield' if a.costmap_shield else ''})", guided)]
    if a.costmap_shield and not args.no_shield_row:
        settings += [(f"{name}, no shield)", avoiding(guided, costmap_shield=False)),
                     ("unguided, shield", avoiding(unguided, costmap_shield=True))]
    origin = provenance([checkpoint])  # the code and model the run starts with
    results = [run_setting(name, config, checkpoint, args.episodes, args.seed) for name, config in settings]
    latency = latency_rows(guided, checkpoint, args.latency_candidates)
    out = Path(args.out)
    record = {"benchmark": "blocked_corridor", "latency": latency, "scenario": args.scenario, "blocked": list(args.blocked),
              "seed": args.seed, "command": command_line(__file__, argv), "machine": machine_info("cpu"),
              **origin, "results": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_picture(results, base.maze, args.blocked, out.with_suffix(".png"))
    for result in results:
        del result["_episodes"]
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(record))
    for result in results:
        print(f"{result['setting']}: success {100 * result['success_rate']:.0f} %, {result['episodes_entering']} "
              f"episodes entering, success without entry {100 * result['success_without_entry']:.0f} %")
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
