"""Write results/kuka.md: the Kuka rows in both worlds and under both protocols, and the stage
latency, from the JSON files bench/eval_kuka.py, bench/kuka_stage_latency.py and
bench/kuka_first_trajectory.py wrote (each column names its files; a missing file leaves "—").

  python bench/kuka_report.py
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from diffuser_core.tasks.kuka import PAPER_SCORES  # noqa: E402
from diffuser_core.tasks.kuka.tasks import EVAL_MODES  # noqa: E402

MODE_NAMES = {"unconditional": "unconditional stacking", "conditional": "conditional stacking",
              "rearrange": "rearrangement"}


class Column(NamedTuple):
    label: str
    files: tuple[str, ...]  # result files in results/, searched in order for each mode


SECTOR = "reference rules, project's start sector"  # the rows measured before the faithful reference world
FAITHFUL = "reference world (its start ring, tool contact and count)"
COLUMNS = [
    Column(f"paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, {FAITHFUL}, a model trained "
           "on demonstrations from the project's start sector", tuple(f"kuka_faithful_79k_ddpm_{mode}.json"
                                                                     for mode in EVAL_MODES)),
    Column(f"paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, {FAITHFUL}, a model trained "
           "on demonstrations from the reference's start ring (22k steps, not shipped)",
           tuple(f"kuka_faithful_reference_model_ddpm_{mode}.json" for mode in EVAL_MODES)),
    Column(f"paper protocol, {SECTOR}", ("kuka_reference_world.json",)),
    Column(f"paper protocol, relation guide α 10, {SECTOR}", ("kuka_reference_world_guide10.json",)),
    Column(f"paper protocol, {SECTOR}", ("kuka_stride4_reference_world.json",)),
    Column(f"paper protocol, relation guide α 10, {SECTOR}", ("kuka_stride4_reference_world_guide10.json",)),
    Column(f"paper protocol, {SECTOR}, training continued (not shipped)", ("kuka_stride4_56k_reference_world.json",)),
    Column(f"paper protocol, relation guide α 10, {SECTOR}, training continued (not shipped)",
           ("kuka_stride4_56k_reference_world_guide10.json",)),
    Column("paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, reference rules, project's "
           "start sector, training continued (not shipped)", ("kuka_stride4_56k_reference_world_guide10_ddpm.json",)),
    Column("paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, reference rules, project's "
           "start sector",
           tuple(f"kuka_stride4_79k_ddpm_{mode}.json" for mode in EVAL_MODES)),
    Column("paper protocol, learned relation classifier (the paper's guide) α 0.03, reference rules, project's "
           "start sector, training continued (not shipped)", ("kuka_stride4_56k_reference_world_classifier.json",)),
    Column("paper protocol, project world", ("kuka_project_world.json",)),
    Column("paper protocol, project world", ("kuka_stride4_project_world.json",)),
    Column("paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, project world",
           ("kuka_stride4_79k_ddpm_project_world.json",)),
    Column("shipped planner settings, project world", tuple(f"kuka_scenario_{mode}.json" for mode in EVAL_MODES)),
    Column("shipped planner settings, reference rules, project's start sector",
           tuple(f"kuka_scenario_reference_{mode}.json" for mode in EVAL_MODES)),
]
# Like for like: the reference world, where the paper measured (its starts, contact, goals and count).
RING_MODEL = "a model trained on demonstrations from the reference's start ring (22k steps, not shipped)"
RING_51K = Column(f"paper protocol with DDPM (all 100 diffusion steps), relation guide α 10, {FAITHFUL}, the model "
                  "trained on demonstrations from the reference's start ring, trained on (not shipped)",
                  tuple(f"kuka_faithful_reference_51k_ddpm_{mode}.json" for mode in EVAL_MODES))
LIKE_FOR_LIKE = [
    RING_51K,
    COLUMNS[1],
    Column(f"paper protocol with DDPM, relation guide α 10, 8 plans per stage keeping the one whose own end holds "
           f"most of the goal, {FAITHFUL}, {RING_MODEL}",
           tuple(f"kuka_faithful_reference_model_ddpm_samples8_{mode}.json" for mode in EVAL_MODES)),
    Column(f"paper protocol with DDPM, the learned relation classifier applied as the reference applies it "
           f"(μ + 0.7 σ ∇J(x_t), later half, other blocks frozen), {FAITHFUL}, {RING_MODEL}",
           tuple(f"kuka_faithful_reference_model_ddpm_classifier_{mode}.json" for mode in EVAL_MODES)),
    COLUMNS[0],
    Column(f"shipped planner settings (`config/kuka_stack.yaml`: its sector-trained model, refinement, guides), "
           f"{FAITHFUL}", tuple(f"kuka_shipped_faithful_{mode}.json" for mode in EVAL_MODES)),
]
# What ships: config/kuka_stack.yaml's settings and checkpoint, as the arm planner runs them.
SHIPPED = [
    Column("project world", tuple(f"kuka_scenario_{mode}.json" for mode in EVAL_MODES)),
    Column("project world, re-measured on the current code",
           tuple(f"kuka_scenario_{mode}_30.json" for mode in EVAL_MODES)),
    Column("reference rules, project's start sector", tuple(f"kuka_scenario_reference_{mode}.json"
                                                            for mode in EVAL_MODES)),
]


def load(name: str) -> dict | None:
    path = ROOT / "results" / name
    return json.loads(path.read_text()) if path.is_file() else None


def result_for(column: Column, mode: str) -> tuple[dict, dict] | None:
    """(file record, the mode's result) of the first of the column's files that has the mode."""
    for name in column.files:
        record = load(name)
        for result in (record or {}).get("results", []):
            if result["config"]["mode"] == mode:
                return record, result
    return None


def score_cell(found) -> str:
    """Mean ± s.e. (episodes); for a goal that ends once it holds (the shipped setting), also what
    stands at its end (final)."""
    if found is None:
        return "—"
    _, result = found
    final = f", final {result['mean_final_score']:.1f}" if result["config"].get("stop_when_done") else ""
    return f"{result['mean_score']:.1f} ± {result['standard_error']:.1f} ({result['episodes']}{final})"


def measured_columns(columns: list[Column] | None = None) -> list[Column]:
    """The columns (of COLUMNS by default) with at least one result file."""
    return [column for column in columns or COLUMNS if any(result_for(column, mode) for mode in EVAL_MODES)]


def heading(column: Column) -> str:
    """The column's label and the model it measured: checkpoint file and training steps."""
    found = next(result_for(column, mode) for mode in EVAL_MODES if result_for(column, mode))
    result = found[1]
    return f"{column.label}: `{Path(result['checkpoint']).name}`, {result['checkpoint_step'] // 1000}k steps"


def scores_table(columns: list[Column] | None = None) -> list[str]:
    """One row per measured setting, one column per task; the paper's row first."""
    lines = ["| setting: protocol, world: model | " + " | ".join(MODE_NAMES[mode] for mode in EVAL_MODES) + " |",
             "|---|" + "---|" * len(EVAL_MODES),
             "| paper: Diffuser (Janner et al. 2022, Table 3), reference code's world | "
             + " | ".join(f"{PAPER_SCORES[mode][0]} ± {PAPER_SCORES[mode][1]}" for mode in EVAL_MODES) + " |"]
    for column in measured_columns(columns):
        lines.append(f"| {heading(column)} | " + " | ".join(score_cell(result_for(column, mode))
                                                          for mode in EVAL_MODES) + " |")
    return lines


def provenance_list(columns: list[Column] | None = None) -> list[str]:
    lines = []
    for column in measured_columns(columns):
        seen = []
        for mode in EVAL_MODES:
            found = result_for(column, mode)
            if found is None or found[0]["command"] in [record["command"] for record in seen]:
                continue
            seen.append(found[0])
        for record in seen:
            result = record["results"][0]
            sha = next(iter(record.get("checkpoint_sha256", {}).values()), "")
            lines.append(f"- {heading(column)}: `{record['command']}` — checkpoint `{Path(result['checkpoint']).name}` "
                         f"(training step {result['checkpoint_step']}, sha256 {sha[:12]}), git commit "
                         f"{record.get('git_commit', '')[:12]}, seed {result['config']['seed']}")
    return lines


def latency_lines() -> list[str]:
    lines = []
    latency = load("kuka_stage_latency.json")
    if latency:
        lines += ["| stage planning, shipped planner settings (the first two rows: the dense model refined two ways) "
                  "| sampling + guides, ms (median / p95) "
                  "| refinement, ms (median / p95) | stage, ms (median / p95) |", "|---|---|---|---|"]
        for row in latency["rows"]:
            cells = [f"{row[key]['median']:.0f} / {row[key]['p95']:.0f}" for key in ("sample_ms", "refine_ms", "stage_ms")]
            lines.append(f"| {row['refinement']} | " + " | ".join(cells) + " |")
        lines += ["", f"({latency['stages']} stages; `{latency['command']}`; git commit {latency['git_commit'][:12]}; "
                  "target: at most 500 ms median on 2 CPU cores)"]
    first = load("kuka_first_trajectory.json")
    if first:
        seconds = [row["first_trajectory_s"] for row in first["rows"]]
        lines += ["", f"Over `bringup kuka_stack`, a goal's first JointTrajectory came {statistics.median(seconds):.2f} s "
                  f"after acceptance in the median of {len(seconds)} goals, {max(seconds):.2f} s at most (target 1 s; "
                  f"`{first['command']}`, git commit {first['git_commit'][:12]})."]
    return lines


PICTURES = {"kuka_faithful_reference_51k_episodes.png": "the ring model at 51k steps, paper protocol",
            "kuka_shipped_faithful_episodes.png": "the shipped planner settings"}


def picture_lines() -> list[str]:
    """Links to the pictures of the first four episodes of each task (final scene, block paths from above)
    of the headline rows, where made (`bench/eval_kuka.py --episodes 4 --episode-pictures PNG`, same seeds)."""
    made = [f"[{label}]({name})" for name, label in PICTURES.items() if (ROOT / "results" / name).is_file()]
    return [f"- the first four episodes of each task, final scene and block paths from above: {', '.join(made)}"] \
        if made else []


def report() -> str:
    lines = ["# Kuka block stacking: both worlds, both protocols", "",
             "## Like for like: the reference world", "",
             "Every row here runs in the reference code's world as its evaluation runs (`--world reference`: its "
             "slabs, its 0.6 m start ring, its flange colliding with blocks, its rearrangement goals, its count "
             "during execution; docs/kuka.md), 100 episodes per task, seed 0. The paper's row is the paper's.", "",
             *scores_table(LIKE_FOR_LIKE), "", *provenance_list(LIKE_FOR_LIKE), *picture_lines(), "",
             "## What ships", "",
             "`config/kuka_stack.yaml` as the arm planner runs it (`bench/eval_kuka.py --scenario kuka_stack`): "
             "its checkpoint, relation guide α 10, grasp guide, refinement, keep-built guide, up to 6 stages, a "
             "goal ends once it holds. Worlds and scores as defined below; not the paper's protocol.", "",
             *scores_table(SHIPPED), "", *provenance_list(SHIPPED), "",
             "## Every setting", "",
             "Score: goal relations satisfied / total × 100, counted during execution as the reference code does "
             "(mean ± standard error, episodes in brackets; the same episode seeds in every row). "
             "**Paper protocol**: 3 plans of a whole stage each, only the start inpainted, relation guides for "
             "conditional stacking and rearrangement (α 1 with 2 guide steps unless the row says α 10 with 10, the "
             "scale the arm planner ships, chosen on seeds 1000+), no refinement and no kinematic guide; plans "
             "sampled by DDIM in 20 steps unless the row says DDPM (every one of the model's 100 diffusion steps, "
             "as the reference samples; `results/kuka_guide_sweep.md` for the tuning episodes). "
             "**Shipped planner settings**: `config/kuka_stack.yaml`'s, as the arm planner runs them (relation "
             "guide α 10, grasp guide, refinement, keep-built guide, up to 6 stages, a goal ends once it holds), with "
             "the checkpoint the row names (`kuka_stack.safetensors`: the dense model shipped before; "
             "`kuka_stack_stride4.safetensors`: the stride-4 model). **Project world**: 5 cm cubes, a grip takes a block only within "
             "2 cm of its top face, a block counts only resting directly on another (within 2.5 cm in xy). "
             "**Reference rules, project's start sector** (`bench/eval_kuka.py --world reference_sector`; every row "
             "so labelled was measured before the faithful reference world existed, as `--world reference`): the "
             "reference code's 0.2 × 0.2 × 0.06 m "
             "slabs, a planned grip takes the block wherever it is, released blocks are stopped at every step, and a "
             "block counts as above another within 0.2 m in xy and more than 0.05 m higher (docs/kuka.md). "
             "**Reference world** (`--world reference`): those rules, and the reference's blocks starting on its "
             "0.6 m ring all round the arm, its flange colliding with them, its rearrangement goals, a block held "
             "at the end of a plan counted once released and one above a held block counted, stages moving "
             "forward only (docs/kuka.md, \"How an episode runs in it\"). "
             "The paper's numbers are the paper's (Janner et al. 2022, Table 3), measured in the reference world.", "",
             *scores_table(), "", *provenance_list(),
             "- the shipped planner settings with the dense `kuka_stack.safetensors`, measured while it shipped: "
             "`results/archive/kuka_dense_scenario_*.json`",
             "", "## Stage latency", "", *latency_lines()]
    return "\n".join(lines) + "\n"


def main() -> int:
    out = ROOT / "results" / "kuka.md"
    out.write_text(report())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
