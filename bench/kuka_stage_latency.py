"""How long one Kuka stage takes to plan with the shipped settings: sampling with the guides, then
the refinement, old (Adam, 600 steps) against new (L-BFGS, at most 150 iterations) on the same
sampled plans, with what each refinement leaves of the costs that make grips and placements physical;
with --compare, also another checkpoint (e.g. a stride-4 model) planning the same stages as the arm
planner would run it (stages.plan_stage: guided and refined on its own states, then filled in).

  python bench/kuka_stage_latency.py [--scenario kuka_stack] [--stages 30] [--seed 0] [--threads 2]
      [--compare CHECKPOINT] [--out results/kuka_stage_latency.json]

Each stage is the first of an episode (the world reset with the episode's seed, the goal drawn from it,
the tasks in turn). Writes OUT (JSON) and OUT with .md: per-stage median and p95 of sampling,
refinement and their sum, for both refinements.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance, provenance_lines, write_json  # noqa: E402
from diffuser_core.planning.loading import checkpoint_stride, load_planner  # noqa: E402
from diffuser_core.planning.planner import Planner  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.scores import episode_seeds  # noqa: E402
from diffuser_core.tasks.kuka.evaluation import KukaEvalConfig  # noqa: E402
from diffuser_core.tasks.kuka.refine import RefineConfig, refine_plan  # noqa: E402
from diffuser_core.tasks.kuka.stages import StageSettings, next_relation, plan_stage  # noqa: E402
from diffuser_core.tasks.kuka.tasks import EVAL_MODES, sample_goal  # noqa: E402
from diffuser_core.tasks.kuka.world import KukaBlockWorld  # noqa: E402

REFINEMENTS = {"old: Adam, 600 steps": RefineConfig(optimiser="adam", iterations=600),
               "new: L-BFGS, at most 150 iterations": RefineConfig()}
PHYSICAL_TERMS = ("grip", "place", "vertical")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="kuka_stack")
    parser.add_argument("--stages", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the scenario's planner uses 2)")
    parser.add_argument("--baseline", help="the dense checkpoint refined both ways (default: the scenario's)")
    parser.add_argument("--compare", help="another Kuka checkpoint to time on the same stages with the same settings")
    parser.add_argument("--out", default=str(ROOT / "results" / "kuka_stage_latency.json"))
    return parser


def baseline_checkpoint(args) -> Path:
    """The dense checkpoint both refinements are timed on."""
    return Path(args.baseline) if args.baseline else resolve_data_path(planner_parameters(args.scenario)["checkpoint"])


def timed(function, *args, **kwargs):
    """(function's result, wall ms)."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, 1000 * (time.perf_counter() - started)


def measure(args) -> dict:
    """Sampling ms, and per refinement its ms and final physical costs, of every measured stage."""
    p = planner_parameters(args.scenario)
    stages = StageSettings.from_parameters(p)
    eval_config = KukaEvalConfig.from_parameters(p, mode="rearrange")
    planner = Planner.from_checkpoint(baseline_checkpoint(args), eval_config.planner_config(None))
    world = KukaBlockWorld()
    compared = load_planner(args.compare, eval_config.planner_config(None)) if args.compare else None
    sample_ms, refine_ms = [], {name: [] for name in REFINEMENTS}
    costs = {name: {term: [] for term in PHYSICAL_TERMS} for name in REFINEMENTS}
    other = {"sample_ms": [], "refine_ms": []}
    for index, seed in enumerate(episode_seeds(args.seed, args.stages)):
        task, relations = sample_goal(np.random.default_rng(seed), EVAL_MODES[index % len(EVAL_MODES)])
        state = world.reset(seed=seed)
        target = next_relation(relations, state) if relations else None
        planner.reset()
        planner.generator.manual_seed(seed)
        sampled, ms = timed(plan_stage, planner, state, target, grasp_guide=stages.grasp_guide,
                            keep_built=stages.keep_built, refine=False, grip_threshold=stages.grip_threshold)
        sample_ms.append(ms)
        for name, refinement in REFINEMENTS.items():
            config = RefineConfig(**{**refinement.__dict__, "grip_threshold": stages.grip_threshold})
            refined, ms = timed(refine_plan, sampled.observations, target, config)
            refine_ms[name].append(ms)
            for term in PHYSICAL_TERMS:
                costs[name][term].append(refined.costs[term])
        if compared is not None:
            compared.reset()
            compared.generator.manual_seed(seed)
            stage = plan_stage(compared, state, target, grasp_guide=stages.grasp_guide, keep_built=stages.keep_built,
                               refine=stages.refine, grip_threshold=stages.grip_threshold)
            other["sample_ms"].append(stage.plan_ms - stage.refine_ms)
            other["refine_ms"].append(stage.refine_ms)
    world.close()
    measured = {"sample_ms": sample_ms, "refine_ms": refine_ms, "costs": costs}
    if compared is not None:
        measured["compared"] = {"checkpoint": args.compare, "stride": checkpoint_stride(args.compare), **other}
    return measured


def summary_rows(measured: dict) -> list[dict]:
    """Per refinement: median and p95 of sampling, refinement and the stage; median final costs."""
    sample = np.array(measured["sample_ms"])
    rows = []
    for name, refine in measured["refine_ms"].items():
        refine = np.array(refine)
        rows.append({"refinement": name, "sample_ms": _stats(sample), "refine_ms": _stats(refine),
                     "stage_ms": _stats(sample + refine),
                     "median_costs_m2": {term: float(np.median(values))
                                         for term, values in measured["costs"][name].items()}})
    if "compared" in measured:
        other = measured["compared"]
        sample, refine = np.array(other["sample_ms"]), np.array(other["refine_ms"])
        rows.append({"refinement": f"{Path(other['checkpoint']).name} (stride {other['stride']}): L-BFGS on its "
                                   f"own states", "sample_ms": _stats(sample), "refine_ms": _stats(refine),
                     "stage_ms": _stats(sample + refine), "median_costs_m2": None})
    return rows


def _stats(values: np.ndarray) -> dict:
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def markdown(record: dict) -> str:
    lines = ["# Kuka stage planning latency (shipped settings)", "",
             "| refinement | sampling + guides, ms (median / p95) | refinement, ms (median / p95) | stage, ms "
             "(median / p95) | grip / place / vertical cost left, m² (median) |", "|---|---|---|---|---|"]
    for row in record["rows"]:
        cost = (" / ".join(f"{row['median_costs_m2'][term]:.1e}" for term in PHYSICAL_TERMS)
                if row["median_costs_m2"] else "—")
        lines.append(f"| {row['refinement']} | {row['sample_ms']['median']:.0f} / {row['sample_ms']['p95']:.0f} | "
                     f"{row['refine_ms']['median']:.0f} / {row['refine_ms']['p95']:.0f} | "
                     f"{row['stage_ms']['median']:.0f} / {row['stage_ms']['p95']:.0f} | {cost} |")
    lines += ["", f"- {record['stages']} stages: the first of episodes seeded from {record['seed']}, tasks "
              f"{', '.join(EVAL_MODES)} in turn; both refinements refine the same sampled plans",
              "- target: a stage (sampling + guides + refinement) at most 500 ms median on 2 CPU cores",
              *provenance_lines(record),
              *[f"- compared checkpoint `{path}` sha256 {sha[:12]}..."
                for path, sha in list(record["checkpoint_sha256"].items())[1:]]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    origin = provenance([baseline_checkpoint(args), *([args.compare] if args.compare else [])])
    measured = measure(args)
    record = {"benchmark": "kuka_stage_latency", "scenario": args.scenario, "stages": args.stages, "seed": args.seed,
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **origin,
              "rows": summary_rows(measured), "measured": measured}
    out = write_json(args.out, record)
    out.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
