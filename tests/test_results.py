"""Results name what made them and what ships is what was measured: the Maze2D table in
results/maze2d.md is the one the JSON files give, and every shipped ROS scenario's offline result
was made with the scenario's current settings and checkpoint, and the README's measured scores are
those of results JSON files."""
import json
import re
import sys
from pathlib import Path

import pytest

from diffuser_core.scenario import planner_parameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.mark.parametrize("section, make", [("maze2d-shipped", "shipped_table"), ("maze2d-table", "maze2d_table")])
def test_the_maze2d_tables_are_generated_from_the_json_results(section, make):
    import bench.results_index as index

    text = (ROOT / "results" / "maze2d.md").read_text()
    found = re.search(rf"<!-- perf:{section} -->\n(.*)\n<!-- /perf:{section} -->", text, re.DOTALL)
    assert found, f"results/maze2d.md has no generated {section}: run bench/results_index.py"
    assert found.group(1).strip() == getattr(index, make)(ROOT / "results").strip(), \
        "results/maze2d.md is out of date with the JSON results: run bench/results_index.py"


def test_the_results_pages_open_with_what_ships_and_kuka_with_the_like_for_like_table_first():
    for page, first in (("maze2d.md", ["## What ships"]), ("kuka.md", ["## Like for like", "## What ships"])):
        headings = [line for line in (ROOT / "results" / page).read_text().splitlines() if line.startswith("## ")]
        assert [h for h, start in zip(headings, first) if h.startswith(start)] == headings[:len(first)] and \
            len(headings) >= len(first), f"results/{page} opens with {headings[:len(first)]}"


def test_result_commands_are_relative_to_the_checkout():
    for path in sorted((ROOT / "results").rglob("*.json")):
        text = path.read_text()
        assert str(ROOT) not in text and "/.venv/" not in text, f"{path.name} names this machine's paths"


def test_the_kuka_page_is_generated_from_the_json_results():
    from bench.kuka_report import report

    assert (ROOT / "results" / "kuka.md").read_text() == report(), \
        "results/kuka.md is out of date with the JSON results: run bench/kuka_report.py"


@pytest.mark.parametrize("scenario", ["maze2d_umaze", "maze2d_medium", "maze2d_large"])
def test_shipped_scenario_results_were_made_with_its_current_settings(scenario):
    from bench._report import file_sha256

    result = ROOT / "results" / f"{scenario}_scenario.json"
    if not result.is_file():
        pytest.skip(f"{result.name} not measured")
    record = json.loads(result.read_text())
    p = planner_parameters(scenario)
    config = record["config"]
    assert (config["sampler"], config["denoising_steps"] or 0, config["warm_start"], config["segments"]) == (
        p["sampler"], p["denoising_steps"], p["warm_start"], p["segments"])
    for section in ("loop", "avoidance"):
        measured = {name: value for name, value in config[section].items() if name in p}
        assert measured == {name: p[name] for name in measured}, f"{result.name}: {section} differs from the scenario"
    assert record["checkpoint_sha256"][record["checkpoint"]] == file_sha256(ROOT / p["checkpoint"]), \
        f"{result.name} was measured with another checkpoint than config/{scenario}.yaml ships"


@pytest.mark.parametrize("mode", ["unconditional", "conditional", "rearrange"])
def test_shipped_kuka_results_were_made_with_its_current_settings(mode):
    from bench._report import file_sha256

    result = ROOT / "results" / f"kuka_scenario_{mode}.json"
    if not result.is_file():
        pytest.skip(f"{result.name} not measured")
    record = json.loads(result.read_text())
    p = planner_parameters("kuka_stack")
    config = record["results"][0]["config"]
    assert record["scenario"] == "kuka_stack" and config["mode"] == mode
    assert (config["sampler"], config["denoising_steps"] or 0, config["guide_scale"], config["n_guide_steps"],
            config["grasp_guide"], config["refine"], config["keep_built"], config["grip_threshold"],
            config["replan_every"], config["stages"], config["stop_when_done"], config.get("samples", 1)) == (
        p["sampler"], p["denoising_steps"], p["guide_scale"], p["n_guide_steps"], p["grasp_guide"], p["refine"],
        p["keep_built"], p["grip_threshold"], p["replan_every"], p["max_stages"], True, p["samples"])
    assert next(iter(record["checkpoint_sha256"].values())) == file_sha256(ROOT / p["checkpoint"]), \
        f"{result.name} was measured with another checkpoint than config/kuka_stack.yaml ships"


def measured_pairs() -> set[tuple[str, str]]:
    """Every (mean, standard error) a results JSON holds, as the README rounds them (one decimal)."""
    pairs = set()

    def visit(item):
        if isinstance(item, dict):
            mean = item.get("mean_normalized_score", item.get("mean_score", item.get("normalized_score")))
            if isinstance(mean, (int, float)) and isinstance(item.get("standard_error"), (int, float)):
                pairs.add((f"{mean:.1f}", f"{item['standard_error']:.1f}"))
            for value in item.values():
                visit(value)
        elif isinstance(item, list):
            for value in item:
                visit(value)

    for path in (ROOT / "results").glob("*.json"):
        visit(json.loads(path.read_text()))
    return pairs


def readme_scores() -> list[tuple[str, str]]:
    """The bold "mean ± s.e." scores of the README's measured-numbers section."""
    section = (ROOT / "README.md").read_text().split("## Status and measured numbers", 1)[1].split("\n## ", 1)[0]
    bolds = section.split("**")[1::2]
    return [tuple(part.split(" ± ")) for bold in bolds for part in bold.split(" / ") if " ± " in part]


def test_the_readmes_measured_scores_come_from_results_json():
    scores, measured = readme_scores(), measured_pairs()
    assert scores, "the README's measured-numbers section states no scores"
    missing = [f"{mean} ± {error}" for mean, error in scores if (mean, error) not in measured]
    assert not missing, f"README scores found in no results/*.json: {missing}"
