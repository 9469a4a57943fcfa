"""Replanning benchmark: the naive reference vs the project's fast planner settings.

  python bench/replan_benchmark.py [--checkpoint checkpoints/maze2d_umaze.safetensors] \
      [--episodes 10] [--naive-episodes N] [--replan-every 10] [--seed 0] \
      [--fast-steps 8] [--fast-warm 8] [--cold-steps 4 8 16] [--warm-steps 4 16 32] \
      [--threads auto|N] [--compile auto|on|off] [--out results/perf_replan.json]

Every setting drives the same seeded Maze2D episodes (same starts and goals) closed loop with
batch 1, replanning every K env steps, and reports plan latency (median, p95), replans/s and the
normalized score. Naive reference: full-step DDPM from pure noise at every replan, torch's default
threads, eager. Fast: few-step DDIM for the first plan, then warm starts (the previous plan shifted,
re-noised k diffusion steps, denoised with about k/N of the DDIM steps), tuned threads, and
torch.compile when it measures faster (mode reduce-overhead = CUDA graphs on a GPU). The fast
setting also replans at EVERY env step to measure the closed-loop rate. Writes OUT (JSON), its
section of results/perf.md (next to OUT) and a latency-vs-score plot.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import (  # noqa: E402
    Target,
    machine_info,
    machine_line,
    require_at_least_one,
    run_cli,
    targets_table,
    update_section,
    write_json,
)
from diffuser_core.checkpoint import load_checkpoint  # noqa: E402
from diffuser_core.config import resolve_device  # noqa: E402
from diffuser_core.planning.planner import Planner  # noqa: E402
from diffuser_core.plotting import save_figure  # noqa: E402
from diffuser_core.tasks.maze2d.env import Maze2DEnv  # noqa: E402
from diffuser_core.tasks.maze2d.evaluation import Maze2DEvalConfig, Maze2DEvalSummary, episode_seeds, evaluate_episode  # noqa: E402

SPEEDUP_TARGET = 20.0  # fast replans/s over the naive reference's
SCORE_LOSS_TARGET = 5.0  # % of the naive reference's normalized score
LOOP_HZ_TARGET = 20.0  # closed-loop rate with a replan at every env step
MIN_NAIVE_SUCCESS = 0.5  # below this the naive reference fails too: the score target says nothing
COMPILE_GAIN = 0.95  # keep torch.compile only if its median latency is below 95 % of eager


@dataclass(frozen=True)
class Setting:
    """One way of planning: DDPM (all N steps) or DDIM with `steps` network calls for a cold plan;
    `warm_start_steps` = re-noise depth k of warm-started replans (None: every replan from noise);
    `tuned` = run with the tuned threads and, if it helped, the compiled network."""

    key: str
    label: str
    sampler: str
    steps: int | None = None
    warm_start_steps: int | None = None
    tuned: bool = True
    fixed_horizon: bool = False  # closed loop without --shrink-horizon / --hold-at-goal (for contrast)

    def eval_config(self, args, replan_every: int | None, episodes: int) -> Maze2DEvalConfig:
        """The evaluation settings: closed loop every `replan_every` steps, or None = plan once
        (the reference protocol, where a warm start has nothing to start from)."""
        closed_loop = replan_every is not None
        return Maze2DEvalConfig(maze=args.maze, episodes=episodes, seed=args.seed, sampler=self.sampler,
                          denoising_steps=self.steps, replan_every=replan_every,
                          warm_start=self.warm_start_steps is not None and closed_loop,
                          warm_start_steps=self.warm_start_steps or 1,
                          shrink_horizon=args.shrink_horizon and closed_loop and not self.fixed_horizon,
                          hold_at_goal=args.hold_at_goal and closed_loop and not self.fixed_horizon,
                          episode_steps=args.episode_steps, device=args.device)


class CountingPlanner(Planner):
    """A Planner that also records the network calls of every plan it makes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.network_calls: list[int] = []

    def plan(self, *args, **kwargs):
        result = super().plan(*args, **kwargs)
        self.network_calls.append(result.denoising_steps)
        return result


@dataclass
class Model:
    """A loaded checkpoint: the diffusion model, its normalizer, horizon and training step."""

    path: str
    diffusion: torch.nn.Module
    normalizer: object
    horizon: int
    step: int
    compiled: bool = False

    @classmethod
    def load(cls, path, maze: str, device) -> "Model":
        """Load a Maze2D checkpoint; ValueError if it was trained on another maze."""
        diffusion, normalizer, saved = load_checkpoint(path, device)
        if saved.env and not saved.env.startswith(f"maze2d-{maze}-"):
            raise ValueError(f"checkpoint {path} was trained on {saved.env!r}, not maze2d-{maze}")
        return cls(str(path), diffusion, normalizer, saved.horizon, saved.step)

    def planner(self, config: Maze2DEvalConfig, device) -> CountingPlanner:
        """A fresh planner for one setting (seeded per episode by the evaluation)."""
        return CountingPlanner(self.diffusion, self.normalizer,
                               config.planner_config(self.horizon), device)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; defaults are the full benchmark (about 10 minutes on 2 CPU cores)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "maze2d_umaze.safetensors"))
    parser.add_argument("--maze", default="umaze", choices=("umaze", "medium", "large"))
    parser.add_argument("--episodes", type=int, default=10, help="seeded episodes per setting")
    parser.add_argument("--naive-episodes", type=int, default=None,
                        help="episodes of the naive reference (the first of the same seeds; default all)")
    parser.add_argument("--hz-episodes", type=int, default=None,
                        help="episodes of the replan-every-step run (default --episodes)")
    parser.add_argument("--replan-every", type=int, default=10, help="replan every K env steps")
    parser.add_argument("--shrink-horizon", action=argparse.BooleanOptionalAction, default=True,
                        help="closed loop: size each replan to the route that remains (diffuser_core.planning.horizon)")
    parser.add_argument("--hold-at-goal", action=argparse.BooleanOptionalAction, default=True,
                        help="closed loop: stop replanning within the reward radius and hold the goal")
    parser.add_argument("--episode-steps", type=int, default=None,
                        help="cut episodes short (scores then NOT comparable with the paper)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast-steps", type=int, default=8, help="DDIM calls of a cold fast plan")
    parser.add_argument("--fast-warm", type=int, default=8,
                        help="warm-start re-noise depth k of the fast setting")
    parser.add_argument("--cold-steps", type=int, nargs="*", default=[4, 8, 16],
                        help="extra curve points: DDIM from noise at every replan with these steps")
    parser.add_argument("--warm-steps", type=int, nargs="*", default=[4, 16, 32],
                        help="extra curve points: the fast setting with these warm-start depths")
    parser.add_argument("--threads", default="auto", help="torch threads of the tuned settings, or auto")
    parser.add_argument("--naive-threads", type=int, default=None,
                        help="torch threads of the naive reference (default: torch's default)")
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"),
                        help="torch.compile the network of the tuned settings (auto: if faster)")
    parser.add_argument("--probe-replans", type=int, default=40, help="replans per tuning measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "results" / "perf_replan.json"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    """Parse options, run the benchmark, write JSON, markdown and the plot."""
    return run_cli(build_parser(), argv, __file__, run, check_args)


def check_args(args) -> None:
    """ValueError with a clear message for option values the benchmark cannot use."""
    require_at_least_one(args, ("episodes", "replan_every", "fast_steps", "fast_warm", "probe_replans"))
    require_at_least_one(args, ("naive_episodes", "hz_episodes", "episode_steps", "naive_threads"), optional=True)
    if args.naive_episodes is not None and args.naive_episodes > args.episodes:
        raise ValueError(f"--naive-episodes ({args.naive_episodes}) cannot exceed "
                         f"--episodes ({args.episodes})")
    if any(steps < 1 for steps in [*args.cold_steps, *args.warm_steps]):
        raise ValueError("--cold-steps and --warm-steps values must be >= 1")
    if args.threads != "auto" and (not args.threads.isdigit() or int(args.threads) < 1):
        raise ValueError(f"--threads must be 'auto' or a positive integer, got {args.threads!r}")
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {args.checkpoint}")


def benchmark_settings(args, n_timesteps: int) -> list[Setting]:
    """The naive reference, the fast setting and the extra latency-vs-score curve points."""
    fast_steps, fast_warm = args.fast_steps, args.fast_warm
    settings = [Setting("naive", f"naive: DDPM {n_timesteps} steps, cold", "ddpm", tuned=False),
                Setting("fast", f"fast: DDIM {fast_steps}, warm k={fast_warm}", "ddim", fast_steps,
                        fast_warm)]
    settings += [Setting(f"ddim{steps}-cold", f"DDIM {steps}, cold", "ddim", steps)
                 for steps in sorted(set(args.cold_steps))]
    settings += [Setting(f"ddim{fast_steps}-warm{k}", f"DDIM {fast_steps}, warm k={k}", "ddim",
                         fast_steps, k) for k in sorted(set(args.warm_steps)) if k != fast_warm]
    if args.shrink_horizon or args.hold_at_goal:  # what the closed-loop rule buys: the fast setting without it
        settings.append(Setting("fast-fixed-horizon", "fast, fixed horizon "
                                "(goal at H − 1, no hold)", "ddim", fast_steps, fast_warm, fixed_horizon=True))
    for setting in settings:
        for value in (setting.steps, setting.warm_start_steps):
            if value is not None and value > n_timesteps:
                raise ValueError(f"{setting.label}: {value} exceeds the model's {n_timesteps} "
                                 "diffusion steps")
    return settings


def run(args, command: str) -> dict:
    """The whole benchmark: tune, run every setting closed loop, check the targets, write."""
    started = time.perf_counter()
    device = resolve_device(args.device)
    default_threads = torch.get_num_threads()
    naive_threads = args.naive_threads or default_threads
    naive_model = Model.load(args.checkpoint, args.maze, device)
    fast_model = Model.load(args.checkpoint, args.maze, device)
    settings = benchmark_settings(args, naive_model.diffusion.n_timesteps)
    seeds = episode_seeds(args.seed, args.episodes)
    tuning = tune(args, fast_model, settings[1], seeds[0], device, default_threads)

    results = []
    for setting in settings:
        torch.set_num_threads(tuning["threads"] if setting.tuned else naive_threads)
        model = fast_model if setting.tuned else naive_model
        episodes = args.episodes if setting.tuned else (args.naive_episodes or args.episodes)
        results.append(run_setting(args, setting, model, seeds[:episodes], args.replan_every, device))
    torch.set_num_threads(tuning["threads"])
    every_step = run_setting(args, settings[1], fast_model, seeds[:args.hz_episodes or args.episodes],
                             1, device)
    open_loop = []  # the reference protocol (plan once): the samplers' score without replanning
    for setting, model in ((settings[0], naive_model), (settings[1], fast_model)):
        torch.set_num_threads(tuning["threads"] if setting.tuned else naive_threads)
        open_loop.append(run_setting(args, setting, model, seeds[:args.episodes], None, device))

    record = {
        "benchmark": "replan", "command": command, "machine": machine_info(device), "seed": args.seed,
        "checkpoint": naive_model.path, "checkpoint_step": naive_model.step,
        "protocol": {"maze": args.maze, "batch": 1, "replan_every": args.replan_every,
                     "shrink_horizon": args.shrink_horizon, "hold_at_goal": args.hold_at_goal,
                     "episode_steps": args.episode_steps or Maze2DEnv(args.maze).max_episode_steps,
                     "episodes": args.episodes, "naive_episodes": args.naive_episodes or args.episodes,
                     "default_threads": default_threads},
        "tuning": tuning, "settings": results, "fast_every_step": every_step, "open_loop": open_loop,
    }
    record["targets"] = [t.to_dict() for t in replan_targets(results[0], results[1], every_step)]
    record["wall_time_s"] = time.perf_counter() - started
    write_outputs(args, record)
    return record


def run_setting(args, setting: Setting, model: Model, seeds: list[int], replan_every: int,
                device) -> dict:
    """Drive the seeded episodes closed loop with one setting; latency, rate and score."""
    config = setting.eval_config(args, replan_every, len(seeds))
    planner = model.planner(config, device)
    env = Maze2DEnv(args.maze)
    episodes, loop_seconds = [], 0.0
    for seed in tqdm(seeds, desc=f"{setting.key} (replan every {replan_every})", disable=args.quiet):
        began = time.perf_counter()
        episodes.append(evaluate_episode(env, planner, config, seed))
        loop_seconds += time.perf_counter() - began
    summary = Maze2DEvalSummary(model.path, model.step, config, episodes, loop_seconds)
    plan_ms = np.concatenate([episode.plan_ms for episode in episodes])
    env_steps = sum(len(episode.driven_xy) - 1 for episode in episodes)
    label = setting.label if replan_every else f"{setting.label.split(',')[0]}, plan once (open loop)"
    return {"key": setting.key, "label": label, "sampler": setting.sampler,
            "cold_steps": setting.steps or model.diffusion.n_timesteps,
            "warm_start_steps": setting.warm_start_steps, "replan_every": replan_every,
            "threads": torch.get_num_threads(), "compiled": setting.tuned and model.compiled,
            "episodes": len(episodes), "seeds": list(seeds),
            "normalized_score": summary.mean_score, "standard_error": summary.standard_error,
            "success_rate": summary.success_rate, "scores": summary.scores.tolist(),
            "plan_calls": int(plan_ms.size), "plan_ms_median": float(np.median(plan_ms)),
            "plan_ms_p95": float(np.percentile(plan_ms, 95)),
            "replans_per_s": float(plan_ms.size / (plan_ms.sum() / 1e3)),
            "mean_network_calls": float(np.mean(planner.network_calls)),
            "loop_hz": env_steps / loop_seconds, "wall_time_s": loop_seconds}


def tune(args, model: Model, fast: Setting, seed: int, device, default_threads: int) -> dict:
    """Pick the thread count and whether to compile from the fast setting's measured latency."""
    config = fast.eval_config(args, args.replan_every, 1)
    planner = model.planner(config, device)
    env = Maze2DEnv(args.maze)
    start = env.reset(seed=seed)
    goal = np.array([*env.target, 0.0, 0.0])

    def probe() -> list[float]:
        return latency_probe(planner, start, goal, args.probe_replans, args.replan_every)

    probe()  # untimed: first-call allocations and kernel selection
    tried = {}
    if args.threads == "auto" and device.type == "cpu":
        for threads in sorted({1, default_threads, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            tried[threads] = float(np.median(probe()))
        threads = min(tried, key=tried.get)
    else:
        threads = default_threads if args.threads == "auto" else int(args.threads)
    torch.set_num_threads(threads)
    if args.shrink_horizon and args.compile == "auto":
        # dynamic=False compiles one graph per plan length; shrinking horizons make dozens of lengths
        compile_report = {"requested": "auto", "used": False, "skipped": "plan lengths vary (shrinking horizon)"}
    else:
        compile_report = choose_compile(args.compile, model, probe, device)
    return {"threads": threads, "threads_median_ms": {str(n): ms for n, ms in tried.items()},
            "compile": compile_report}


def choose_compile(mode: str, model: Model, probe, device) -> dict:
    """torch.compile the network ("on"), or only if it measures faster ("auto"); on a GPU with
    mode reduce-overhead, which replays the network as a CUDA graph."""
    report = {"requested": mode, "used": False}
    if mode == "off":
        return report
    eager_ms = float(np.median(probe()))
    network = model.diffusion.network
    compile_mode = "reduce-overhead" if device.type == "cuda" else "default"
    began = time.perf_counter()
    try:
        model.diffusion.network = torch.compile(network, mode=compile_mode, dynamic=False)
        probe()  # the first calls compile
    except Exception as error:  # noqa: BLE001 - no compiler toolchain, unsupported op...: stay eager
        model.diffusion.network = network
        return {**report, "eager_median_ms": eager_ms, "error": f"{type(error).__name__}: {error}"}
    compile_s = time.perf_counter() - began
    compiled_ms = float(np.median(probe()))
    used = mode == "on" or compiled_ms < COMPILE_GAIN * eager_ms
    if not used:
        model.diffusion.network = network
    model.compiled = used
    return {**report, "used": used, "torch_compile_mode": compile_mode, "compile_s": compile_s,
            "eager_median_ms": eager_ms, "compiled_median_ms": compiled_ms}


def latency_probe(planner: Planner, start: np.ndarray, goal: np.ndarray, replans: int,
                  executed: int) -> list[float]:
    """Plan ms of one cold plan and `replans` replans that follow the plan itself `executed`
    steps at a time (a perfectly tracked plan), from a reseeded planner."""
    planner.reset()
    planner.generator.manual_seed(0)
    plan = planner.plan(start, goal=goal)
    times = [plan.plan_time_ms]
    for _ in range(replans):
        observation = plan.observations[min(executed, planner.horizon - 1)]
        plan = planner.plan(observation, goal=goal, executed_steps=executed)
        times.append(plan.plan_time_ms)
    return times


def replan_targets(naive: dict, fast: dict, every_step: dict) -> list[Target]:
    """The issue's replanning targets, checked on the measured numbers."""
    speedup = fast["replans_per_s"] / naive["replans_per_s"]
    common = naive["episodes"]  # the naive run uses the first episodes of the same seeds
    naive_score = float(np.mean(naive["scores"]))
    fast_score = float(np.mean(fast["scores"][:common]))
    if naive["success_rate"] < MIN_NAIVE_SUCCESS:
        score_met = False  # both failing is no evidence that the fast setting keeps the score
        score_text = (f"not assessable (the naive reference itself reaches the goal in only "
                      f"{100 * naive['success_rate']:.0f} % of episodes)")
    elif abs(naive_score) > 1e-9:
        loss = 100 * (naive_score - fast_score) / abs(naive_score)
        score_met, score_text = loss <= SCORE_LOSS_TARGET, f"{loss:+.1f} % loss"
    else:
        score_met, score_text = fast_score >= naive_score, "naive score is 0"
    return [
        Target("replan speed-up", f">= {SPEEDUP_TARGET:.0f}x the naive reference's replans/s",
               f"{speedup:.1f}x ({fast['replans_per_s']:.1f} vs {naive['replans_per_s']:.2f} replans/s)",
               speedup >= SPEEDUP_TARGET),
        Target("score kept", f"<= {SCORE_LOSS_TARGET:.0f} % loss of the naive normalized score",
               f"{score_text}: {fast_score:.1f} vs {naive_score:.1f} over the same {common} episodes",
               score_met),
        Target("closed-loop rate", f">= {LOOP_HZ_TARGET:.0f} Hz replanning at every env step",
               f"{every_step['loop_hz']:.1f} Hz (plan p95 {every_step['plan_ms_p95']:.1f} ms)",
               every_step["loop_hz"] >= LOOP_HZ_TARGET),
    ]


def write_outputs(args, record: dict) -> None:
    """JSON to --out, the plot next to it, and the 'replan' section of perf.md next to it."""
    out = Path(args.out)
    write_json(out, record)
    plot = save_figure(latency_score_figure(record), out.with_name("perf_latency_vs_score.png"))
    update_section(out.with_name("perf.md"), "replan", markdown_section(record, plot.name))


def latency_score_figure(record: dict) -> Figure:
    """Normalized score (mean ± s.e.) against median plan latency (bar to p95), log latency axis."""
    figure = Figure(figsize=(6.4, 4.2))
    ax = figure.subplots()
    rows = [*record["settings"], {**record["fast_every_step"], "label": "fast, replan every step"},
            *record.get("open_loop", [])]
    for row in rows:
        color = {"naive": "tab:red", "fast": "tab:green"}.get(row["key"], "tab:blue")
        if row["replan_every"] == 1:
            color = "tab:olive"
        median = row["plan_ms_median"]
        ax.errorbar(median, row["normalized_score"], yerr=row["standard_error"],
                    xerr=[[0.0], [row["plan_ms_p95"] - median]], fmt="o" if row["replan_every"] else "s",
                    color=color, capsize=3)
        ax.annotate(row["label"], (median, row["normalized_score"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set(xscale="log", xlabel="plan latency, ms (median, bar to p95)",
           ylabel="normalized score (mean ± s.e.)",
           title=f"maze2d-{record['protocol']['maze']}, batch 1: replan every "
                 f"{record['protocol']['replan_every']} steps (o), plan once (squares)")
    ax.grid(alpha=0.3)
    return figure


def markdown_section(record: dict, plot_name: str) -> str:
    """The 'replan' section of perf.md: settings table, targets, tuning, command and machine."""
    protocol, machine, tuning = record["protocol"], record["machine"], record["tuning"]
    lines = [
        "## Replanning: naive reference vs fast settings (`bench/replan_benchmark.py`)", "",
        f"Checkpoint `{Path(record['checkpoint']).name}` (training step {record['checkpoint_step']}); "
        f"maze2d-{protocol['maze']}, batch 1, closed loop replanning every {protocol['replan_every']} "
        f"env steps{closed_loop_rule(protocol)}, {protocol['episode_steps']}-step episodes, {protocol['episodes']} seeded episodes per "
        f"setting (naive reference: the first {protocol['naive_episodes']} of the same seeds); same seeds "
        "give the same starts and goals. Latency = wall time of `Planner.plan` over every plan of every "
        "episode (cold first plans included); replans/s = plans / total planning time; loop Hz = env "
        "steps / wall time of the whole loop (plan + tracking + simulation).", "",
        "| setting | threads | compiled | episodes | score (mean ± s.e.) | success | plan ms median / p95 "
        "| replans/s | network calls / plan | loop Hz |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [setting_row(row) for row in [*record["settings"], {**record["fast_every_step"],
                                                                "label": "fast, replan EVERY step"},
                                           *record["open_loop"]]]
    lines += ["", *targets_table([Target(**t) for t in record["targets"]]), "",
              f"![latency vs score]({plot_name})", "", *tuning_lines(tuning),
              "- rows marked *plan once (open loop)*: the reference protocol (one plan per episode, "
              "tracked to the end) on the same seeds: the samplers' score without replanning",
              f"- with {protocol['episodes']} episodes the score's s.e. is large: a score difference "
              "inside about two s.e. is not evidence either way",
              f"- command: `{record['command']}`", f"- machine: {machine_line(machine)}",
              f"- GPU: {gpu_note(machine)}",
              f"- seed {record['seed']}; wall time {record['wall_time_s']:.0f} s"]
    return "\n".join(lines)


def closed_loop_rule(protocol: dict) -> str:
    """How closed-loop replans are sized and when they stop, as a clause of the protocol sentence."""
    parts = []
    if protocol.get("shrink_horizon"):
        parts.append("each replan's horizon sized to the route that remains (`diffuser_core/horizon.py`: "
                     "the previous plan's arrival step minus the robot's progress, + 8, rounded up to a "
                     "multiple of 4, between 16 and the model's 128)")
    if protocol.get("hold_at_goal"):
        parts.append("no replanning once within the 0.5 reward radius (the goal is held, as the reference's "
                     "tracker holds its plan's last state)")
    return f" ({'; '.join(parts)})" if parts else " (fixed horizon, goal at t = H − 1 every replan)"


def setting_row(row: dict) -> str:
    """One markdown table row of a setting's results."""
    cells = [row["label"], str(row["threads"]), "yes" if row["compiled"] else "no", str(row["episodes"]),
             f"{row['normalized_score']:.1f} ± {row['standard_error']:.1f}",
             f"{100 * row['success_rate']:.0f}%", f"{row['plan_ms_median']:.1f} / {row['plan_ms_p95']:.1f}",
             f"{row['replans_per_s']:.1f}", f"{row['mean_network_calls']:.2f}", f"{row['loop_hz']:.1f}"]
    return f"| {' | '.join(cells)} |"


def tuning_lines(tuning: dict) -> list[str]:
    """How the threads and torch.compile were chosen, as markdown bullets."""
    tried = ", ".join(f"{n}: {ms:.1f} ms" for n, ms in tuning["threads_median_ms"].items())
    lines = [f"- threads of the tuned settings: {tuning['threads']}"
             + (f" (median plan ms of the fast setting by threads: {tried})" if tried else " (not tuned)")]
    report = tuning["compile"]
    if report["requested"] == "off":
        lines.append("- torch.compile: off")
    elif "skipped" in report:
        lines.append(f"- torch.compile: not tried ({report['skipped']})")
    elif "error" in report:
        lines.append(f"- torch.compile: failed, stayed eager ({report['error']})")
    else:
        verdict = "used" if report["used"] else "not used (not faster)"
        lines.append(f"- torch.compile ({report['torch_compile_mode']}): {verdict}; median "
                     f"{report['compiled_median_ms']:.2f} ms compiled vs {report['eager_median_ms']:.2f} ms "
                     f"eager; compile + first calls {report['compile_s']:.0f} s")
    lines.append("- channels-last memory format does not apply (1-D convolutions over plan time)")
    return lines


def gpu_note(machine: dict) -> str:
    """Whether the numbers are GPU numbers (they are labelled with the GPU's name) or CPU only."""
    if "gpu" in machine:
        return f"measured on {machine['gpu']} (device {machine['device']})"
    if machine["cuda_available"]:
        return "a GPU was present but not used: CPU numbers"
    return "no GPU was lent to this task: CPU numbers only"


if __name__ == "__main__":
    sys.exit(main())
