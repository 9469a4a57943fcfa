"""How fast the planner runs under each denoiser backend (torch, onnx, auto), in one run on this
machine: one denoiser call at batch 1 and at a batch of candidates (eager torch, frozen TorchScript,
ONNX Runtime), a replan of each shipped Maze2D scenario's loop (its own episodes, every attempt of a
tick included), and a Kuka stage of the shipped arm settings (sampling with the guides, then the
refinement). Writes results/inference_speed.json + .md.

  python bench/inference_speed.py [--episodes 4] [--stages 12] [--threads 1] [--calls 100]
"""
from __future__ import annotations

import argparse
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, provenance, write_report  # noqa: E402
from bench.eval_maze2d import scenario_eval_config  # noqa: E402
from diffuser_core.checkpoint import load_checkpoint  # noqa: E402
from diffuser_core.model.backends import InferenceNetwork, frozen_torchscript  # noqa: E402
from diffuser_core.planning.loading import load_planner  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.scores import episode_seeds  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import evaluate  # noqa: E402

BACKENDS = ("torch", "onnx", "auto")
MAZES = ("maze2d_umaze", "maze2d_medium", "maze2d_large")
LOOPS = {"shipped loop": [], "no map (one candidate)": ["whole_map=false", "candidates=1"]}  # scenario changes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=4, help="episodes per maze and backend (seed 0)")
    parser.add_argument("--stages", type=int, default=12, help="Kuka stages per backend")
    parser.add_argument("--calls", type=int, default=100, help="denoiser calls per timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scenarios", nargs="+", default=[*MAZES, "kuka_stack"])
    parser.add_argument("--out", default=str(ROOT / "results" / "inference_speed.json"))
    return parser


def median_ms(call, calls: int) -> float:
    """Median wall ms of `call` over `calls` runs, after two warm-up runs."""
    call(), call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def denoiser_rows(scenario: str, args) -> list[dict]:
    """One denoiser call of the scenario's model at batch 1 and at its candidates' batch, per implementation."""
    p = planner_parameters(scenario)
    diffusion, _, saved = load_checkpoint(resolve_data_path(p["checkpoint"]), args.device)
    network, width, horizon = diffusion.network.eval(), diffusion.transition_dim, saved.horizon
    implementations = {"torch (eager)": network, "TorchScript (frozen)": frozen_torchscript(network, width, horizon),
                       "ONNX Runtime": InferenceNetwork(network, width, horizon, "onnx", args.threads, args.device)}
    rows = []
    for batch in sorted({1, int(p.get("candidates", 1)) if p.get("whole_map") else 1, 16}):
        x, t = torch.randn(batch, horizon, width), torch.randint(0, diffusion.n_timesteps, (batch,))
        with torch.inference_mode():
            timings = {name: median_ms(lambda f=f: f(x, t), args.calls) for name, f in implementations.items()}
        rows.append({"scenario": scenario, "model": Path(p["checkpoint"]).name, "horizon": horizon, "batch": batch,
                     "ms": timings})
        print(f"{scenario} batch {batch}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in timings.items()), flush=True)
    return rows


def replan_row(scenario: str, backend: str, args, loop: str = "shipped loop") -> dict:
    """The scenario's loop over `episodes` episodes with `backend`: planning ms per replan (tick)."""
    config, checkpoint = scenario_eval_config(scenario, Namespace(
        episodes=args.episodes, seed=0, multi=False, episode_steps=None, device=args.device,
        set=[f"backend={backend}", *LOOPS[loop]]))
    summary = evaluate(checkpoint, config, progress=False)
    plan_ms = np.concatenate([e.plan_ms for e in summary.episodes])
    row = {"scenario": scenario, "loop": loop, "backend": backend, "replans": int(plan_ms.size),
           "median_ms": float(np.median(plan_ms)), "p95_ms": float(np.percentile(plan_ms, 95)),
           "score": summary.mean_score, "success_rate": summary.success_rate}
    print(f"{scenario} {loop} {backend}: replan {row['median_ms']:.1f} ms median, {row['p95_ms']:.1f} p95 "
          f"({row['replans']} replans)", flush=True)
    return row


def loops(scenario: str) -> list[str]:
    """The loops timed for a scenario: the shipped one, and without the map where it ships one."""
    return list(LOOPS) if planner_parameters(scenario).get("whole_map") else ["shipped loop"]


def kuka_row(backend: str, args) -> dict:
    """Kuka stages with the shipped arm settings and `backend`: sampling, refinement and stage ms."""
    from diffuser_core.tasks.kuka.evaluation import KukaEvalConfig
    from diffuser_core.tasks.kuka.stages import StageSettings, next_relation, plan_stage
    from diffuser_core.tasks.kuka.tasks import EVAL_MODES, sample_goal
    from diffuser_core.tasks.kuka.world import KukaBlockWorld

    p = {**planner_parameters("kuka_stack"), "backend": backend}
    stages = StageSettings.from_parameters(p)
    planner = load_planner(resolve_data_path(p["checkpoint"]), KukaEvalConfig.from_parameters(
        p, mode="rearrange").planner_config(None), args.device)
    world, stage_ms, refine_ms = KukaBlockWorld(), [], []
    for index, seed in enumerate(episode_seeds(0, args.stages)):
        _, relations = sample_goal(np.random.default_rng(seed), EVAL_MODES[index % len(EVAL_MODES)])
        state = world.reset(seed=seed)
        planner.reset()
        planner.generator.manual_seed(seed)
        stage = plan_stage(planner, state, next_relation(relations, state) if relations else None,
                           grasp_guide=stages.grasp_guide, keep_built=stages.keep_built, refine=stages.refine,
                           grip_threshold=stages.grip_threshold)
        stage_ms.append(stage.plan_ms)
        refine_ms.append(stage.refine_ms)
    world.close()
    stage_ms, refine_ms = np.array(stage_ms), np.array(refine_ms)
    row = {"scenario": "kuka_stack", "backend": backend, "stages": len(stage_ms),
           "sample_ms": float(np.median(stage_ms - refine_ms)), "refine_ms": float(np.median(refine_ms)),
           "median_ms": float(np.median(stage_ms)), "p95_ms": float(np.percentile(stage_ms, 95))}
    print(f"kuka_stack {backend}: stage {row['median_ms']:.0f} ms median (sampling {row['sample_ms']:.0f}, "
          f"refinement {row['refine_ms']:.0f})", flush=True)
    return row


def markdown(record: dict) -> str:
    lines = ["# Planner speed under each denoiser backend (`bench/inference_speed.py`)", "",
             f"One run on this machine, {record['threads']} torch / ONNX Runtime thread(s); "
             f"{record['machine']['platform']}, {record['machine']['cpu_count']} CPUs.", "",
             "## One denoiser call (ms, median)", "",
             "| scenario | model | horizon | batch | torch (eager) | TorchScript (frozen) | ONNX Runtime |",
             "|---|---|---|---|---|---|---|"]
    for r in record["denoiser"]:
        ms = r["ms"]
        lines.append(f"| {r['scenario']} | `{r['model']}` | {r['horizon']} | {r['batch']} | "
                     f"{ms['torch (eager)']:.2f} | {ms['TorchScript (frozen)']:.2f} | {ms['ONNX Runtime']:.2f} |")
    lines += ["", "## A replan of the shipped loop (ms per tick, every attempt included)", "",
              "| scenario | loop | backend | median | p95 | replans | score (these episodes) |",
              "|---|---|---|---|---|---|---|"]
    for r in record["replans"]:
        if r["scenario"] == "kuka_stack":
            continue
        lines.append(f"| {r['scenario']} | {r['loop']} | {r['backend']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{r['replans']} | {r['score']:.1f} |")
    kuka = [r for r in record["replans"] if r["scenario"] == "kuka_stack"]
    if kuka:
        lines += ["", "## A Kuka stage, shipped arm settings (ms)", "",
                  "| backend | stage median | stage p95 | sampling with guides (median) | refinement (median) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['backend']} | {r['median_ms']:.0f} | {r['p95_ms']:.0f} | {r['sample_ms']:.0f} | "
                  f"{r['refine_ms']:.0f} |" for r in kuka]
    lines += ["", f"- command: `{record['command']}`; git commit {record['git_commit'][:12]}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoints = [resolve_data_path(planner_parameters(s)["checkpoint"]) for s in args.scenarios]
    origin = provenance(checkpoints)
    denoiser = [row for scenario in args.scenarios for row in denoiser_rows(scenario, args)]
    replans = [replan_row(scenario, backend, args, loop) for scenario in args.scenarios if scenario in MAZES
               for loop in loops(scenario) for backend in BACKENDS]
    if "kuka_stack" in args.scenarios:
        replans += [kuka_row(backend, args) for backend in BACKENDS]
    record = {"benchmark": "inference_speed", "threads": args.threads, "episodes": args.episodes,
              "denoiser": denoiser, "replans": replans, "command": command_line(__file__, argv),
              "machine": machine_info(args.device), **origin}
    write_report(args.out, record, markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
