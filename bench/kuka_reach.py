"""How close a Kuka model's plans bring the tool to the block they grip: a diagnostic for models
that do not stack yet (the score needs the tool within 2 cm of the block's top).

  python bench/kuka_reach.py --checkpoint checkpoints/kuka_stack.safetensors [--plans 40] [--data data/kuka_demos.hdf5]

For the first state of each of the first N demonstrations (home pose, blocks at random), plan once
(start inpainted, DDIM 20), take the first planned state whose attached flag for some block is above
0.5, and measure the distance from the tool point (forward kinematics of the planned joints) to that
block's top-face centre (the scripted demonstrations descend onto it before they grip). With --refine
the plan is first refined (diffuser_core/tasks/kuka/refine.py) and the same distance measured on the
refined plan. Writes OUT (JSON) and OUT with .md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench._report import command_line, machine_info, machine_line  # noqa: E402
from diffuser_core.planning.loading import load_planner  # noqa: E402
from diffuser_core.planning.planner import PlannerConfig  # noqa: E402
from diffuser_core.tasks.kuka.refine import refine_plan  # noqa: E402
from diffuser_core.tasks.kuka.tasks import BLOCK_SIZE, attached_flags, block_slice  # noqa: E402
from diffuser_core.tasks.kuka.world import KukaBlockWorld  # noqa: E402


def grip_distance(world: KukaBlockWorld, blocks: np.ndarray, plan: np.ndarray) -> float:
    """Tool-to-block-top distance (m) at the plan's first grip, the blocks as in state `blocks`; inf if
    the plan never grips."""
    flags = attached_flags(plan)
    grips = np.argwhere(flags > 0.5)
    if len(grips) == 0:
        return float("inf")
    step, block = grips[0]
    top = blocks[block_slice(block)][:3] + (0.0, 0.0, BLOCK_SIZE / 2)
    return float(np.linalg.norm(world.tool_pose(plan[step, :7])[0] - top))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "kuka_stack.safetensors"))
    parser.add_argument("--data", default=str(ROOT / "data" / "kuka_demos.hdf5"))
    parser.add_argument("--plans", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refine", action="store_true", help="measure refined plans (kuka_refine)")
    parser.add_argument("--out", default=str(ROOT / "results" / "kuka_reach.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    planner = load_planner(args.checkpoint, PlannerConfig(sampler="ddim", denoising_steps=20))
    planner.generator.manual_seed(args.seed)
    with h5py.File(args.data, "r") as data, KukaBlockWorld() as world:
        timeouts = np.flatnonzero(data["timeouts"][:])
        starts = np.concatenate([[0], timeouts[:-1] + 1])[:args.plans]
        first_states = data["observations"][starts].astype(np.float64)
        distances, chance = [], []
        for index, start in enumerate(first_states):
            result = planner.plan(start)  # a strided model's grips are measured on its own states
            plan = result.observations if result.subgoals is None else result.subgoals
            if args.refine:
                plan = refine_plan(plan).observations
            distances.append(grip_distance(world, start, plan))
            # the same plan measured against another demonstration's blocks: what a plan that ignores
            # where the blocks are would score
            chance.append(grip_distance(world, first_states[(index + 1) % len(first_states)], plan))
    distances, chance = np.array(distances), np.array(chance)
    record = {"command": command_line(__file__, argv), "machine": machine_info("cpu"), "seed": args.seed,
              "checkpoint": Path(args.checkpoint).name, "refined": args.refine, "plans": len(distances),
              "median_m": float(np.median(distances)), "within_2cm": int(np.sum(distances <= 0.02)),
              "within_5cm": int(np.sum(distances <= 0.05)), "no_grip": int(np.sum(np.isinf(distances))),
              "median_other_demos_blocks_m": float(np.median(chance))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    out.with_suffix(".md").write_text(
        "# Kuka: tool-to-block distance at the first planned grip\n\n"
        "| checkpoint | refined | plans | median distance | within 2 cm (needed to grip) | within 5 cm | never grips "
        "| median distance to another demo's block (chance) |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| `{record['checkpoint']}` | {'yes' if args.refine else 'no'} | {record['plans']} "
        f"| {100 * record['median_m']:.2f} cm | {record['within_2cm']} "
        f"| {record['within_5cm']} | {record['no_grip']} | {100 * record['median_other_demos_blocks_m']:.1f} cm |\n\n"
        "- chance: the same plans measured against the next demonstration's blocks, i.e. what plans that "
        "ignore where the blocks are would score\n"
        f"- command: `{record['command']}`\n- machine: {machine_line(record['machine'])}\n- seed {args.seed}\n")
    print(f"median {100 * record['median_m']:.2f} cm over {len(distances)} plans (chance "
          f"{100 * record['median_other_demos_blocks_m']:.1f} cm); within 2 cm: {record['within_2cm']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
