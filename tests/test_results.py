"""Results name what made them and what ships is what was measured: the Maze2D table in
results/maze2d.md is the one the JSON files give, and every shipped ROS scenario's offline result
was made with the scenario's current settings and checkpoint."""
import json
import re
import sys
from pathlib import Path

import pytest

from diffuser_ros.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def test_the_maze2d_table_is_generated_from_the_json_results():
    from bench.results_index import maze2d_table

    text = (ROOT / "results" / "maze2d.md").read_text()
    section = re.search(r"<!-- perf:maze2d-table -->\n(.*)\n<!-- /perf:maze2d-table -->", text, re.DOTALL)
    assert section, "results/maze2d.md has no generated table: run bench/results_index.py"
    assert section.group(1).strip() == maze2d_table(ROOT / "results").strip(), \
        "results/maze2d.md is out of date with the JSON results: run bench/results_index.py"


@pytest.mark.parametrize("scenario", ["maze2d_umaze", "maze2d_medium", "maze2d_large"])
def test_shipped_scenario_results_were_made_with_its_current_settings(scenario):
    from bench._report import file_sha256

    result = ROOT / "results" / f"{scenario}_scenario.json"
    if not result.is_file():
        pytest.skip(f"{result.name} not measured")
    record = json.loads(result.read_text())
    p = next(spec.parameters for spec in load_scenario(ROOT / "config" / f"{scenario}.yaml")
             if spec.name == "diffuser_planner")
    config, replan = record["config"], record["config"]["replan"]
    assert (config["sampler"], config["denoising_steps"] or 0, config["warm_start"], config["segments"]) == (
        p["sampler"], p["denoising_steps"], p["warm_start"], p["segments"])
    assert (replan["replan_deviation"], replan["settle_distance"], replan["max_plan_age"], replan["shrink_horizon"],
            config["replan_rate"], config["goal_tolerance"]) == (
        p["replan_deviation"], p["settle_distance"], p["max_plan_age"], p["shrink_horizon"], p["replan_rate"],
        p["goal_tolerance"])
    assert record["checkpoint_sha256"][record["checkpoint"]] == file_sha256(ROOT / p["checkpoint"]), \
        f"{result.name} was measured with another checkpoint than config/{scenario}.yaml ships"
