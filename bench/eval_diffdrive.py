"""Evaluate the differential-drive planner a scenario ships: random start and goal points in its world,
driven by the planner node's loop in simulated time (diffuser_core/tasks/diffdrive/evaluation.py).

    python bench/eval_diffdrive.py --scenario diffdrive_room --episodes 100 --seed 0 [--checkpoint C] [--out results/diffdrive_room.json]

Writes the success rate, times to the goal and plan latency as JSON and markdown, with the command,
machine, seed, git commit and the checkpoint's sha256; `--dataset` adds the training set's size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import command_line, machine_info, provenance, provenance_lines, write_report  # noqa: E402
from bench.eval_maze2d import parameter_changes  # noqa: E402
from diffuser_core.checkpoint import read_checkpoint  # noqa: E402
from diffuser_core.planar.avoidance import AvoidanceSettings  # noqa: E402
from diffuser_core.planning.loading import PlanningSettings  # noqa: E402
from diffuser_core.planning.receding import LoopSettings  # noqa: E402
from diffuser_core.scenario import planner_parameters, resolve_data_path  # noqa: E402
from diffuser_core.settings import from_parameters  # noqa: E402
from diffuser_core.tasks.diffdrive.evaluation import DiffDriveEvalConfig, evaluate  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="diffdrive_room")
    parser.add_argument("--checkpoint", help="default: the scenario's")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=60.0, help="simulated seconds per goal")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="planner parameters changed from the scenario's (to try a setting)")
    parser.add_argument("--dataset", help="the training set (hdf5), to record its size beside the result")
    parser.add_argument("--recording", help="the ROS recording the training set came from, to record its size")
    parser.add_argument("--recording-wall-s", type=float, help="measured wall-clock seconds the recording took")
    parser.add_argument("--conversion-wall-s", type=float, help="measured wall-clock seconds of dataset from-bag")
    parser.add_argument("--training-wall-s", type=float, help="measured wall-clock seconds of training to the checkpoint")
    parser.add_argument("--out", default=str(ROOT / "results" / "diffdrive_room.json"))
    parser.add_argument("--quiet", action="store_true")
    return parser


def scenario_eval_config(scenario: str, args) -> tuple[DiffDriveEvalConfig, str]:
    """The evaluation of the settings a scenario ships (its loop, planner, map, limits and goal fields)."""
    p = {**planner_parameters(scenario), **parameter_changes(getattr(args, "set", []))}
    if p.get("robot") != "diff_drive":
        raise ValueError(f"scenario {scenario} is not a differential-drive scenario")
    fields = list(p["state_fields"])
    goal_dims = tuple(sorted(fields.index(field) for field in p["goal_fields"]))
    config = DiffDriveEvalConfig(layout=p["maze"], episodes=args.episodes, seed=args.seed, time_limit=args.time_limit,
                                 control_rate=p["control_rate"], limits=tuple(p["command_limits"]), goal_dims=goal_dims,
                                 loop=from_parameters(LoopSettings, p), planning=from_parameters(PlanningSettings, p),
                                 avoidance=from_parameters(AvoidanceSettings, p))
    return config, str(resolve_data_path(p["checkpoint"]))


def dataset_size(path: str | None) -> dict:
    """Steps and episodes of a training set (hdf5), or nothing without one."""
    if not path:
        return {}
    from diffuser_core.data.datasets import load_hdf5_episodes

    episodes = load_hdf5_episodes(path)
    return {"dataset": path, "dataset_episodes": len(episodes), "dataset_steps": int(sum(map(len, episodes)))}


def making_of(args) -> dict:
    """How the model was made, as measured and passed in: the recording's size and the wall times."""
    made = {}
    if args.recording:
        made["recording"], made["recording_mb"] = args.recording, round(Path(args.recording).stat().st_size / 1e6, 1)
    for name in ("recording_wall_s", "conversion_wall_s", "training_wall_s"):
        if getattr(args, name) is not None:
            made[name] = getattr(args, name)
    return made


def markdown(record: dict) -> str:
    """The result as a short markdown table with its provenance."""
    times = record["time_to_goal_s_median"]
    lines = [f"# Differential-drive robot, {record['layout']}: {record['episodes']} random goals", "",
             "| checkpoint (training steps) | success | median time to goal | plan median / p95 | episodes touching a wall |",
             "|---|---|---|---|---|",
             f"| {Path(record['checkpoint']).name} ({record['training_step']}) | {record['success_rate']:.0f} % "
             f"± {record['success_standard_error']:.1f} | {times if times is None else f'{times:.1f} s'} | "
             f"{record['plan_ms_median']:.1f} / {record['plan_ms_p95']:.1f} ms | {record['contact_episodes']} |", "",
             f"- goals: random free points at least 1 m from a random start and heading; success: within the "
             f"scenario's goal tolerance before {record['time_limit_s']:.0f} simulated seconds; seed {record['seed']}"]
    if "recording" in record:
        lines.append(f"- recording: {record['recording']} ({record['recording_mb']} MB)"
                     + (f", recorded in {record['recording_wall_s']:.0f} s of wall-clock time" if "recording_wall_s" in record else "")
                     + (f", converted in {record['conversion_wall_s']:.0f} s" if "conversion_wall_s" in record else ""))
    if "dataset_steps" in record:
        lines.append(f"- training set: {record['dataset']} ({record['dataset_episodes']} episodes, "
                     f"{record['dataset_steps']} steps at the control rate, 1 / plan_dt)")
    if "training_wall_s" in record:
        lines.append(f"- training: {record['training_step']} steps in {record['training_wall_s'] / 60:.0f} min of "
                     f"wall-clock time on one CPU thread")
    return "\n".join(lines + provenance_lines(record)) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    config, checkpoint = scenario_eval_config(args.scenario, args)
    checkpoint = args.checkpoint or checkpoint
    origin = provenance([checkpoint])
    summary = evaluate(checkpoint, config, progress=not args.quiet)
    record = {**summary.to_dict(), "training_step": read_checkpoint(checkpoint)[2].step,
              "command": command_line(__file__, argv), "machine": machine_info("cpu"), **origin,
              **dataset_size(args.dataset), **making_of(args)}
    write_report(args.out, record, markdown(record))
    print(f"success {record['success_rate']:.0f} % over {record['episodes']} goals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
