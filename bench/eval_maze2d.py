"""Evaluate a Maze2D / Multi2D Diffuser checkpoint and write results JSON + a markdown table.

  python bench/eval_maze2d.py --checkpoint checkpoints/maze2d_umaze.safetensors --maze umaze \
      --episodes 100 --seed 0 [--multi] [--replan-every K [--warm-start]] [--sampler ddpm|ddim] \
      [--steps N] [--out results/maze2d_umaze.json] [--plot results/maze2d_umaze.png] \
      [--first-horizon fixed|straight|learned [--steps-to-go FILE] [--horizon-scale S --horizon-margin M]]
  python bench/eval_maze2d.py --scenario maze2d_medium --episodes 100 [--multi]

Default protocol = the reference's (plan once, open loop, full episode). --scenario instead runs
the planner node's loop (diffuser_core.planning.replanning) with exactly the planner parameters the
scenario's ROS YAML ships (checkpoint, maze, sampler, warm start, replanning, tolerance). Writes OUT (JSON) and
OUT with .md (a short table with the paper's number, labelled as such, the command and machine).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml
from matplotlib.figure import Figure
from matplotlib.patches import Circle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance  # noqa: E402
from diffuser_core.planar.avoidance import AvoidanceSettings  # noqa: E402
from diffuser_core.planning.horizon import HORIZON_RULES, HorizonSizing  # noqa: E402
from diffuser_core.planning.loading import PlanningSettings  # noqa: E402
from diffuser_core.planning.planner import PlannerConfig  # noqa: E402
from diffuser_core.planning.receding import LoopSettings  # noqa: E402
from diffuser_core.plotting import draw_plan, draw_walls, save_figure  # noqa: E402
from diffuser_core.sampling.samplers import SAMPLER_NAMES  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.settings import from_parameters  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import CHOICE_MODELS, Maze2DEvalConfig, Maze2DEvalSummary, evaluate  # noqa: E402
from diffuser_core.tasks.maze2d.layouts import CELL_SQUARE_OFFSET  # noqa: E402

PLOTTED_EPISODES = 4


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; defaults follow the reference protocol."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", help="evaluate a ROS scenario's planner settings (config/<scenario>.yaml) "
                        "in the node's replanning loop; sets checkpoint, maze and planner options")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="with --scenario: change one of its planner parameters (YAML value), e.g. whole_map=true")
    parser.add_argument("--checkpoint", help="diffusion checkpoint (default checkpoints/maze2d_<maze>.safetensors; "
                                             "with --scenario: the scenario's, or this one under its settings, "
                                             "e.g. the flat model for contrast)")
    parser.add_argument("--maze", default="umaze", choices=("umaze", "medium", "large"))
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multi", action="store_true", help="Multi2D: a random goal cell each episode")
    parser.add_argument("--replan-every", type=int, default=None,
                        help="replan every K env steps (default: plan once, the reference protocol)")
    parser.add_argument("--warm-start", action="store_true", help="warm-start replans (needs --replan-every)")
    parser.add_argument("--warm-start-steps", type=int, default=PlannerConfig.warm_start_steps)
    parser.add_argument("--shrink-horizon", action="store_true",
                        help="size each replan to the route that remains (needs --replan-every)")
    parser.add_argument("--hold-at-goal", action="store_true",
                        help="stop replanning within the reward radius and hold the goal (needs --replan-every)")
    parser.add_argument("--sampler", default="ddpm", choices=SAMPLER_NAMES)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (DDIM; default all)")
    parser.add_argument("--horizon", type=int, default=None,
                        help="plan length in env steps (default: the checkpoint's; a hierarchical model "
                             "rounds it up to whole subgoal segments)")
    parser.add_argument("--first-horizon", default="fixed", choices=HORIZON_RULES,
                        help="the first plan's length (and every replan's that does not shrink): fixed (the "
                             "checkpoint's or --horizon), straight (--straight-per-m * start-goal distance + "
                             "--straight-offset) or learned (--horizon-scale * steps-to-go + --horizon-margin)")
    parser.add_argument("--steps-to-go", metavar="FILE",
                        help="with --first-horizon learned: the steps-to-go model (bench/train_steps_to_go.py)")
    parser.add_argument("--horizon-scale", type=float, default=HorizonSizing.scale)
    parser.add_argument("--horizon-margin", type=float, default=HorizonSizing.margin, help="env steps")
    parser.add_argument("--straight-per-m", type=float, default=HorizonSizing.per_unit, help="env steps per metre")
    parser.add_argument("--straight-offset", type=float, default=HorizonSizing.offset, help="env steps")
    parser.add_argument("--min-horizon", type=int, default=None,
                        help="shortest sized plan in env steps (default 16, rounded to the model's multiple)")
    parser.add_argument("--max-horizon", type=int, default=None,
                        help="longest sized plan in env steps (default: twice the model's horizon)")
    parser.add_argument("--candidates", type=int, default=1, help="plans sampled in one batch per planning tick")
    parser.add_argument("--choose-by", default="", choices=CHOICE_MODELS,
                        help="keep the candidate a model of the data ranks best: density (of visited states) or "
                             "reachability (of hops between plan states); needs --choice-model")
    parser.add_argument("--choice-model", default="", metavar="FILE",
                        help="the model file (python -m diffuser_core.model.visit_density / .reachability)")
    parser.add_argument("--episode-steps", type=int, default=None,
                        help="cut episodes short (scores are then NOT comparable with the paper)")
    parser.add_argument("--low-level", help="hierarchical checkpoints: a low-level Diffuser (horizon K + 1) "
                        "fills the segments between subgoals")
    parser.add_argument("--segments", default="linear", choices=("linear", "hermite"),
                        help="hierarchical checkpoints without --low-level: how segments are interpolated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", help="results JSON (default results/maze2d_<maze>[_multi].json)")
    parser.add_argument("--plot", nargs="?", const="", default=None,
                        help="save driven paths of a few episodes (default path: OUT with .png)")
    parser.add_argument("--plot-episodes", type=int, default=PLOTTED_EPISODES, help="episodes in the picture")
    parser.add_argument("--failures-of", metavar="RESULTS_JSON",
                        help="run again, and draw, only the episodes of an earlier run that did not reach the goal "
                             "(same options; default OUT: that file's name + _failures)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    """Run the evaluation and write JSON, markdown and (optionally) the figure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return run(args, argv)
    except ValueError as error:  # bad option values, or a checkpoint that does not fit
        parser.error(str(error))


def scenario_eval_config(scenario: str, args) -> tuple[Maze2DEvalConfig, str]:
    """(Maze2DEvalConfig, checkpoint path) for the planner settings a scenario ships, in the node's loop."""
    p = {**planner_parameters(scenario), **parameter_changes(getattr(args, "set", []))}
    if p.get("robot", "point_mass") != "point_mass" or not p.get("maze"):
        raise ValueError(f"scenario {scenario} is not a Maze2D point-mass scenario")
    planning = from_parameters(PlanningSettings, p)
    low_level = p.get("low_level_checkpoint") or None
    config = Maze2DEvalConfig(maze=p["maze"], episodes=args.episodes, seed=args.seed, multi_goal=args.multi,
                              sampler=planning.sampler, denoising_steps=planning.denoising_steps or None,
                              warm_start=planning.warm_start, warm_start_steps=planning.warm_start_steps,
                              horizon=planning.horizon or None, loop=from_parameters(LoopSettings, p),
                              episode_steps=args.episode_steps, device=args.device,
                              low_level=str(resolve_data_path(low_level)) if low_level else None,
                              segments=planning.segments, avoidance=from_parameters(AvoidanceSettings, p),
                              backend=planning.backend, **scenario_data_models(planning, args))
    return config, str(resolve_data_path(p["checkpoint"]))


def scenario_data_models(planning: PlanningSettings, args) -> dict:
    """The scenario's plan sizing and choice among samples, each unless the command line sets its own."""
    sizing = horizon_sizing(args)
    if sizing.rule == "fixed":
        sizing = planning.horizon_sizing(resolve_data_path)
    choice = choice_fields(args)
    if not choice["choose_by"] and planning.choose_by:
        choice = {"candidates": planning.plan_candidates, "choose_by": planning.choose_by,
                  "choice_model": str(resolve_data_path(planning.choice_model))}
    return {"horizon_sizing": sizing, **choice}


def choice_fields(args) -> dict:
    """The evaluation's choice among sampled plans from the command line."""
    return {"candidates": getattr(args, "candidates", 1), "choose_by": getattr(args, "choose_by", ""),
            "choice_model": getattr(args, "choice_model", "")}


def horizon_sizing(args) -> HorizonSizing:
    """The plan sizing the options ask for (fixed when they name none, as other scripts' options do)."""
    if getattr(args, "first_horizon", "fixed") == "fixed" and not getattr(args, "steps_to_go", None):
        return HorizonSizing()
    return HorizonSizing(rule=args.first_horizon, steps_to_go=args.steps_to_go,
                         scale=args.horizon_scale, margin=args.horizon_margin, per_unit=args.straight_per_m,
                         offset=args.straight_offset, min_horizon=args.min_horizon, max_horizon=args.max_horizon)


def parameter_changes(assignments: list[str]) -> dict:
    """NAME=VALUE assignments (values read as YAML) as a parameter dict."""
    changes = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {assignment!r}")
        changes[name.strip()] = yaml.safe_load(value)
    return changes


def run(args, argv=None) -> int:
    """Evaluate with the parsed options and write the results."""
    if args.scenario:
        config, checkpoint = scenario_eval_config(args.scenario, args)
        checkpoint = args.checkpoint or checkpoint
        default_out = f"maze2d_{config.maze}{'_multi' if args.multi else ''}_scenario.json"
        return write_results(checkpoint, config, Path(args.out or ROOT / "results" / default_out), args, argv)
    config = Maze2DEvalConfig(maze=args.maze, episodes=args.episodes, seed=args.seed, multi_goal=args.multi,
                        sampler=args.sampler, denoising_steps=args.steps, replan_every=args.replan_every,
                        warm_start=args.warm_start, warm_start_steps=args.warm_start_steps,
                        shrink_horizon=args.shrink_horizon, hold_at_goal=args.hold_at_goal,
                        episode_steps=args.episode_steps, device=args.device, low_level=args.low_level,
                        segments=args.segments, horizon=args.horizon, horizon_sizing=horizon_sizing(args),
                        **choice_fields(args))
    checkpoint = args.checkpoint or ROOT / "checkpoints" / f"maze2d_{args.maze}.safetensors"
    out = Path(args.out or ROOT / "results" / f"maze2d_{args.maze}{'_multi' if args.multi else ''}.json")
    return write_results(checkpoint, config, out, args, argv)


def write_results(checkpoint, config: Maze2DEvalConfig, out: Path, args, argv) -> int:
    """Evaluate, then write the JSON, the markdown and (optionally) the figure."""
    origin = provenance([checkpoint, config.low_level, config.horizon_sizing.steps_to_go,
                         config.choice_model])  # code and models used
    seeds = failed_seeds(args.failures_of) if getattr(args, "failures_of", None) else None
    if seeds is not None:
        out = Path(args.out or Path(args.failures_of).with_name(Path(args.failures_of).stem + "_failures.json"))
        args.plot, args.plot_episodes = args.plot if args.plot is not None else "", max(len(seeds), 1)
        if not seeds:
            print(f"{args.failures_of}: every episode reached the goal")
            return 0
    summary = evaluate(checkpoint, config, progress=not args.quiet, seeds=seeds)
    record = {**summary.to_dict(), "command": command_line(__file__, argv),
              "machine": machine_info(config.device), **origin}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown_report(record))
    if args.plot is not None:
        save_figure(plot_episodes(summary, args.plot_episodes), args.plot or out.with_suffix(".png"))
    print(headline(record))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def failed_seeds(path: str) -> list[int]:
    """The episode seeds of a results file that did not reach the goal."""
    return [episode["seed"] for episode in json.loads(Path(path).read_text())["per_episode"] if not episode["reached"]]


def headline(record: dict) -> str:
    """One line: our score ± s.e., success rate, plan latency, and the paper's score."""
    paper = record["paper_score"]
    return (f"{record['config']['maze']}{' multi' if record['config']['multi_goal'] else ''}: "
            f"{record['mean_normalized_score']:.1f} ± {record['standard_error']:.1f} over "
            f"{record['episodes']} episodes, success {100 * record['success_rate']:.0f}%, plan "
            f"{record['plan_ms_median']:.0f} ms median (paper: {paper['mean']} ± {paper['standard_error']})")


def markdown_report(record: dict) -> str:
    """A short markdown table of our result next to the paper's, plus how it was produced."""
    config, paper, machine = record["config"], record["paper_score"], record["machine"]
    env = f"{'Multi2D' if config['multi_goal'] else 'Maze2D'} {config['maze']}"
    steps_to_goal = record["mean_steps_to_goal"]
    lines = [
        f"# {env}: Diffuser evaluation", "",
        "| | normalized score (mean ± s.e.) | episodes | success | steps to goal | plan ms (median / p95) |",
        "|---|---|---|---|---|---|",
        f"| this run (step {record['checkpoint_step']}) | {record['mean_normalized_score']:.1f} ± "
        f"{record['standard_error']:.1f} | {record['episodes']} | {100 * record['success_rate']:.0f}% | "
        f"{'–' if steps_to_goal is None else f'{steps_to_goal:.0f}'} | "
        f"{record['plan_ms_median']:.0f} / {record['plan_ms_p95']:.0f} |",
        f"| paper (Janner et al. 2022, Table 1) | {paper['mean']} ± {paper['standard_error']} | – | – | – | – |",
        "",
        f"- protocol: {record['protocol']}; sampler {config['sampler']}, denoising steps "
        f"{config['denoising_steps'] or 'all'}; episode steps {config['episode_steps'] or 'full limit'}; "
        f"seed {config['seed']}",
        f"- checkpoint: `{record['checkpoint']}` (training step {record['checkpoint_step']}, sha256 "
        f"{record['checkpoint_sha256'][record['checkpoint']][:12]}...); git commit {record['git_commit'][:12]}",
        *sizing_lines(record),
        *choice_lines(record),
        f"- command: `{record['command']}`",
        f"- machine: {machine['platform']}, {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), device {machine['device']}"
        f"{', ' + machine['gpu'] if 'gpu' in machine else ''}; wall time {record['wall_time_s']:.0f} s",
        *(["- **episodes were cut short: not comparable with the paper's score**"]
          if config["episode_steps"] else []),
        "- s.e. = population std / sqrt(episodes), as the reference's read_results.py",
    ]
    return "\n".join(lines) + "\n"


def choice_lines(record: dict) -> list[str]:
    """A markdown line on the choice among sampled plans, with its model file's sha256 (none without one)."""
    config = record["config"]
    if not config.get("choose_by"):
        return []
    path = config["choice_model"]
    return [f"- choice: {config['candidates']} plans sampled per planning tick, the one the {config['choose_by']} "
            f"model ranks best kept; `{path}` (sha256 {record['checkpoint_sha256'][path][:12]}...)"]


def sizing_lines(record: dict) -> list[str]:
    """A markdown line on how the first plan was sized, with the steps-to-go file's sha256 (none when fixed)."""
    sizing = record["config"]["horizon_sizing"]
    if sizing["rule"] == "fixed":
        return []
    bounds = f"bounds [{sizing['min_horizon'] or 'default'}, {sizing['max_horizon'] or 'default'}] env steps"
    if sizing["rule"] == "straight":
        return [f"- first horizon: straight, {sizing['per_unit']:g} * distance + {sizing['offset']:g} steps; {bounds}"]
    path = sizing["steps_to_go"]
    return [f"- first horizon: learned, {sizing['scale']:g} * steps-to-go + {sizing['margin']:g} steps; {bounds}; "
            f"steps-to-go `{path}` (sha256 {record['checkpoint_sha256'][path][:12]}...)"]


def plot_episodes(summary: Maze2DEvalSummary, count: int = PLOTTED_EPISODES) -> Figure:
    """A few episodes' driven paths (coloured start -> end) over the walls, every plan thin and grey
    (the first dashed), in rows of four."""
    env = Maze2DEnv(summary.config.maze)
    rows, columns = env.layout.shape
    extent = (-0.5 + CELL_SQUARE_OFFSET, rows - 0.5 + CELL_SQUARE_OFFSET,
              -0.5 + CELL_SQUARE_OFFSET, columns - 0.5 + CELL_SQUARE_OFFSET)
    episodes = summary.episodes[:count]
    per_row = min(len(episodes), PLOTTED_EPISODES)
    lines = -(-len(episodes) // per_row)
    figure = Figure(figsize=(3.2 * per_row, 3.6 * lines))
    for ax, episode in zip(figure.subplots(lines, per_row, squeeze=False).reshape(-1), episodes):
        draw_walls(ax, env.layout, extent)
        for plan in episode.plans_xy[1:]:
            ax.plot(plan[:, 0], plan[:, 1], "-", color="tab:gray", lw=0.5, alpha=0.6)
        ax.plot(episode.first_plan[:, 0], episode.first_plan[:, 1], "--", color="tab:gray", lw=1)
        draw_plan(ax, episode.driven_xy)
        ax.add_patch(Circle(tuple(episode.goal), 0.5, fill=False, color="tab:red", lw=1))  # reward region
        reached = f"goal at step {episode.steps_to_goal}" if episode.reached else "goal not reached"
        ax.set(title=f"score {episode.normalized_score:.0f}, {reached}\n{episode.plan_calls} plans, "
                     f"{episode.wall_contact_steps} steps touching a wall", aspect="equal", xticks=[], yticks=[],
               xlim=extent[:2], ylim=extent[2:])
        ax.title.set_fontsize(7)
    return figure


if __name__ == "__main__":
    sys.exit(main())
