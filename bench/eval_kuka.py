"""Evaluate a Kuka block-stacking Diffuser on the paper's three tasks and write results JSON + markdown.

  python bench/eval_kuka.py --checkpoint checkpoints/kuka_stack.safetensors \
      [--modes unconditional conditional rearrange] [--episodes 100] [--seed 0] \
      [--sampler ddim|ddpm] [--steps N] [--guide-scale A] [--out results/kuka_project_world.json] [--picture PNG]
  python bench/eval_kuka.py --scenario kuka_stack --episodes 100   # what config/kuka_stack.yaml ships

One model, three tasks by test-time conditions only (diffuser_core/tasks/kuka/evaluation.py has the
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

from bench._report import command_line, machine_info, machine_line, provenance  # noqa: E402
from diffuser_core.sampling.samplers import GRADIENT_AT, SAMPLER_NAMES  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.tasks.kuka.evaluation import PAPER_SCORES, WORLDS, KukaEvalConfig, evaluate, render_episode  # noqa: E402
from diffuser_core.tasks.kuka.tasks import EVAL_MODES  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "kuka_stack_stride4.safetensors"))
    parser.add_argument("--scenario", help="evaluate the arm planner settings a ROS scenario ships (config/<scenario>"
                                           ".yaml: checkpoint, sampler, guides, refinement, stages); the other "
                                           "planner options are then ignored")
    parser.add_argument("--modes", nargs="+", default=list(EVAL_MODES), choices=EVAL_MODES)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="ddim", choices=SAMPLER_NAMES)
    parser.add_argument("--steps", type=int, default=None, help="DDIM denoising steps (default all)")
    parser.add_argument("--guide-scale", type=float, default=KukaEvalConfig.guide_scale)
    parser.add_argument("--stages", type=int, default=KukaEvalConfig.stages, help="plans per episode")
    parser.add_argument("--guide-at", default="mean", choices=GRADIENT_AT,
                        help="mean: mu + alpha Sigma grad J(mu), --guide-steps times; input: mu + alpha sigma grad J(x_t) "
                             "once per step, as the reference applies its classifier (its alpha: 0.7)")
    parser.add_argument("--samples", type=int, default=KukaEvalConfig.samples,
                        help="plans per stage in one batch, the one whose own end holds most of the goal kept")
    parser.add_argument("--replan-every", type=int, default=0,
                        help="0: each plan runs whole (the paper's protocol); k: replan after k executed steps")
    parser.add_argument("--reference-grasp", action="store_true",
                        help="a planned grip takes the block wherever it is, as the reference code does "
                             "(default: only within 2 cm of its top, this project's world)")
    parser.add_argument("--world", default="project", choices=WORLDS,
                        help="project: 5 cm cubes gripped within 2 cm, this project's on-top rule; reference: the "
                             "reference code's world (slabs, grip from anywhere, released blocks stopped, its 'above' "
                             "rule, starts on its ring, a flange that hits blocks, its rearrangement goals); "
                             "reference_sector: its rules with this project's start sector (the earlier rows)")
    parser.add_argument("--guide-steps", type=int, default=KukaEvalConfig.n_guide_steps,
                        help="gradient steps of the guides per denoising step")
    parser.add_argument("--grasp-guide", type=float, default=0.0,
                        help="weight of the grasp guide (planned joints put the tool on the block the plan "
                             "holds) in every task; 0: off, the paper's guides only")
    parser.add_argument("--keep-built", action="store_true",
                        help="unconditional stacking: push against picking up blocks already stacked "
                             "(kuka_guides.keep_built_guide; this project's addition)")
    parser.add_argument("--stop-when-done", action="store_true",
                        help="end an episode once its goal holds, as the arm planner does (the paper runs every stage)")
    parser.add_argument("--refine", action="store_true",
                        help="refine every sampled plan's joints so its grips and placements are physical "
                             "(diffuser_core/tasks/kuka/refine.py; this project's addition)")
    parser.add_argument("--classifier", default="",
                        help="guide relations with this learned relation classifier, as the paper does "
                             "(python -m diffuser_core.tasks.kuka.relation_classifier; default the analytic relation guide)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "results" / "kuka_project_world.json"))
    parser.add_argument("--picture", help="save a filmstrip (PNG) of the best-scoring episode here")
    parser.add_argument("--episode-pictures", metavar="PNG",
                        help="save the first four episodes of each task here: final scene and block paths from above")
    parser.add_argument("--quiet", action="store_true")
    return parser


def execution_line(config: dict) -> str:
    steps = f"{config['denoising_steps']} DDIM steps" if config["sampler"] == "ddim" and config["denoising_steps"] \
        else f"{config['sampler']}, all diffusion steps"
    runs = (f"each plan's first {config['replan_every']} steps, then a replan" if config["replan_every"]
            else "each of the plans whole, open loop (the paper's protocol)")
    if str(config.get("world", "")).startswith("reference"):
        starts = ("blocks starting on its 0.6 m ring all round the arm, a flange that hits blocks"
                  if config["world"] == "reference" else "blocks starting in this project's sector in front of the arm")
        grasp = ("the reference's rules: 0.2 x 0.2 x 0.06 m slabs, a planned grip takes the block wherever it is, "
                 "released blocks stopped at every step, a block counts above another within 0.2 m in xy and "
                 f"more than 0.05 m higher; {starts}")
    elif config["grasp_distance"] == "inf":
        grasp = "a planned grip takes the block wherever it is (the reference's rule)"
    else:
        grasp = f"a planned grip takes a block within {100 * config['grasp_distance']:.0f} cm of the tool"
    guides = f"guide scale {config['guide_scale']}, {config['n_guide_steps']} guide steps"
    if config.get("guide_gradient_at", "mean") == "input":
        guides = f"guide mu + {config['guide_scale']} sigma grad J(x_t) once per step (the reference's rule)"
    if config.get("classifier"):
        guides += f", relations guided by the learned classifier {Path(config['classifier']).name}"
    if config.get("grasp_guide"):
        guides += f", grasp guide weight {config['grasp_guide']} in every task"
    if config.get("keep_built"):
        guides += ", keep-built guide"
    if config.get("stop_when_done"):
        guides += ", episodes end once the goal holds"
    if config.get("samples", 1) > 1:
        guides += f", {config['samples']} plans per stage, the one holding most of the goal at its end kept"
    if config.get("refine"):
        guides += ", every plan refined (kuka_refine: grips and placements made physical)"
    return f"{config['stages']} stages of H steps; {runs}; {steps}; {guides}; {grasp}"


def markdown(records: list[dict], command: str, machine: dict, origin: dict, scenario: str | None = None) -> str:
    world = {"reference": "the reference code's world", "reference_sector": "the reference's rules, this project's "
             "start sector"}.get(records[0]["config"].get("world"), "this project's world")
    lines = [f"# Kuka block stacking (paper §5.3, Table 3), {world}", "",
             "| task | paper: Diffuser (Janner et al. 2022, Table 3) | measured (mean ± s.e.) | episodes "
             "| final-scene score | full successes |",
             "|---|---|---|---|---|---|"]
    for record in records:
        paper = record["paper_score"]
        lines.append(f"| {record['config']['mode']} | {paper['mean']} ± {paper['standard_error']} "
                     f"| {record['mean_score']:.1f} ± {record['standard_error']:.1f} | {record['episodes']} "
                     f"| {record['mean_final_score']:.1f} | {100 * record['full_success_rate']:.0f} % |")
    first = records[0]
    sha = next(iter(origin["checkpoint_sha256"].values()))
    lines += ["", f"- checkpoint: `{Path(first['checkpoint']).name}` (training step {first['checkpoint_step']}, sha256 "
              f"{sha[:12]}...); git commit {origin['git_commit'][:12]}",
              *([f"- relation classifier: `{first['config']['classifier']}` (sha256 "
                 f"{origin['checkpoint_sha256'][first['config']['classifier']][:12]}...)"]
                if first["config"].get("classifier") else []),
              *([f"- settings: the arm planner's as `config/{scenario}.yaml` ships them"] if scenario else []),
              "- score: goal relations satisfied / total × 100, counted during execution as the reference "
              "does; final-scene score: the same on the last state only",
              f"- execution: {execution_line(first['config'])}",
              f"- command: `{command}`", f"- machine: {machine_line(machine)}",
              f"- seed {first['config']['seed']}"]
    return "\n".join(lines) + "\n"


def save_filmstrip(summaries, path: Path) -> None:
    """The best-scoring episode (first task first on ties): its start and the scene after each stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, episode = max(((s, e) for s in summaries for e in s.episodes), key=lambda pair: pair[1].score)
    pictures = render_episode(episode.states, frames=summary.config.stages + 1,
                              world_config=summary.config.world_config())
    figure, axes = plt.subplots(1, len(pictures), figsize=(3.2 * len(pictures), 2.8))
    for index, (ax, picture) in enumerate(zip(axes, pictures)):
        ax.imshow(picture)
        ax.set_axis_off()
        ax.set_title("start" if index == 0 else f"after plan {index}", fontsize=9)
    goal = ", ".join(str(r) for r in episode.relations) or "any tower"
    figure.suptitle(f"{summary.config.mode} (seed {episode.seed}, goal: {goal}): score {episode.score:.0f}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def save_episode_grid(summaries, path: Path, per_task: int = 4) -> None:
    """The first `per_task` episodes of each task: the final scene (rendered) above the blocks' paths seen
    from above (o start, x end), each titled with its goal and scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2 * len(summaries), per_task, figsize=(3.2 * per_task, 5.6 * len(summaries)),
                                squeeze=False)
    for row, summary in enumerate(summaries):
        for column, episode in enumerate(summary.episodes[:per_task]):
            scene, paths = axes[2 * row, column], axes[2 * row + 1, column]
            scene.imshow(render_episode(episode.states, frames=2, world_config=summary.config.world_config())[-1])
            scene.set_axis_off()
            goal = ", ".join(str(r) for r in episode.relations) or "any tower"
            scene.set_title(f"{summary.config.mode} seed {episode.seed}\n{goal}\nscore {episode.score:.0f}, "
                            f"final {episode.final_score:.0f}", fontsize=8)
            draw_block_paths(paths, episode.states)
        for column in range(len(summary.episodes[:per_task]), per_task):
            axes[2 * row, column].set_axis_off()
            axes[2 * row + 1, column].set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)


def draw_block_paths(ax, states) -> None:
    """Each block's xy path over the episode, in its colour (o start, x end), the arm's base at the origin."""
    from diffuser_core.tasks.kuka.tasks import BLOCK_NAMES, block_slice

    colours = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue", "yellow": "gold"}
    for index, name in enumerate(BLOCK_NAMES):
        xy = states[:, block_slice(index)][:, :2]
        ax.plot(xy[:, 0], xy[:, 1], color=colours.get(name, "k"), lw=1)
        ax.plot(*xy[0], "o", color=colours.get(name, "k"), ms=4)
        ax.plot(*xy[-1], "x", color=colours.get(name, "k"), ms=6)
    ax.plot(0, 0, "s", color="0.3", ms=6)
    ax.set_aspect("equal")
    ax.set_xlim(-0.9, 0.9)
    ax.set_ylim(-0.9, 0.9)
    ax.tick_params(labelsize=6)


def grasp_distance(args) -> float:
    """The reference's attach-from-anywhere grasp, or this project's world's."""
    if args.reference_grasp and args.world.startswith("reference"):
        raise ValueError(f"--reference-grasp is part of --world {args.world} already")
    return float("inf") if args.reference_grasp else KukaEvalConfig.grasp_distance


def scenario_configs(args) -> tuple[list[KukaEvalConfig], str]:
    """One config per mode with the planner settings a scenario ships, and its checkpoint."""
    p = planner_parameters(args.scenario)
    if p.get("robot") != "kuka_arm":
        raise ValueError(f"scenario {args.scenario} is not a Kuka arm scenario")
    configs = [KukaEvalConfig.from_parameters(p, mode=mode, episodes=args.episodes, seed=args.seed,
                                              grasp_distance=grasp_distance(args), world=args.world,
                                              device=args.device)
               for mode in args.modes]
    return configs, str(resolve_data_path(p["checkpoint"]))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.scenario:
            configs, args.checkpoint = scenario_configs(args)
        else:
            configs = [KukaEvalConfig(mode=mode, episodes=args.episodes, seed=args.seed, sampler=args.sampler,
                                      denoising_steps=args.steps, guide_scale=args.guide_scale, stages=args.stages,
                                      replan_every=args.replan_every, grasp_guide=args.grasp_guide, refine=args.refine,
                                      keep_built=args.keep_built, stop_when_done=args.stop_when_done,
                                      n_guide_steps=args.guide_steps, grasp_distance=grasp_distance(args),
                                      world=args.world, classifier=args.classifier, device=args.device,
                                      samples=args.samples, guide_gradient_at=args.guide_at)
                       for mode in args.modes]
        for kind, path in [("checkpoint", args.checkpoint), ("classifier", args.classifier)]:
            if path and not Path(path).is_file():
                raise ValueError(f"{kind} not found: {path}")
        origin = provenance([path for path in [args.checkpoint, args.classifier] if path])  # the code and model the run starts with
        summaries = [evaluate(args.checkpoint, config, progress=not args.quiet) for config in configs]
        records = [summary.to_dict() for summary in summaries]
    except ValueError as error:
        print(f"eval_kuka: {error}", file=sys.stderr)
        return 2
    command, machine = command_line(__file__, argv), machine_info(args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "machine": machine, "scenario": args.scenario,
                               **origin, "results": records}, indent=2))
    out.with_suffix(".md").write_text(markdown(records, command, machine, origin, args.scenario))
    for record in records:
        print(f"{record['config']['mode']}: {record['mean_score']:.1f} ± {record['standard_error']:.1f} over "
              f"{record['episodes']} episodes (paper: {PAPER_SCORES[record['config']['mode']][0]})")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if args.picture:
        save_filmstrip(summaries, Path(args.picture))
        print(f"wrote {args.picture}")
    if args.episode_pictures:
        save_episode_grid(summaries, Path(args.episode_pictures))
        print(f"wrote {args.episode_pictures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
