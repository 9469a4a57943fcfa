"""The performance bench scripts run in tiny configurations and write well-formed JSON + markdown."""
import importlib
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "maze2d_umaze.safetensors"
N_TIMESTEPS = 64  # the shipped U-Maze checkpoint's diffusion steps


def load_script(name):
    """A bench script as a module (bench/ is a namespace package under the repository root)."""
    return importlib.import_module(f"bench.{name}")


def check_targets(record, names):
    assert [t["name"] for t in record["targets"]] == names
    for target in record["targets"]:
        assert isinstance(target["met"], bool) and target["measured"] and target["requirement"]


@pytest.fixture(scope="module")
def replan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf") / "perf_replan.json"
    bench = load_script("replan_benchmark")
    assert bench.main(["--checkpoint", str(CHECKPOINT), "--episodes", "2", "--naive-episodes", "1",
                       "--hz-episodes", "1", "--episode-steps", "5", "--replan-every", "3",
                       "--fast-steps", "2", "--fast-warm", "8", "--cold-steps", "3", "--warm-steps", "16",
                       "--threads", "1", "--naive-threads", "1", "--compile", "off",
                       "--probe-replans", "1", "--out", str(out), "--quiet"]) == 0
    return out, json.loads(out.read_text())


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="shipped checkpoint missing")
def test_replan_benchmark_reports_every_setting_and_the_targets(replan_run):
    out, record = replan_run
    settings = {row["key"]: row for row in record["settings"]}
    assert list(settings) == ["naive", "fast", "ddim3-cold", "ddim2-warm16", "fast-fixed-horizon"]
    assert record["protocol"]["shrink_horizon"] and record["protocol"]["hold_at_goal"]  # the defaults
    plans_per_episode = math.ceil(5 / 3)
    assert settings["naive"]["plan_calls"] == 1 * plans_per_episode
    assert settings["naive"]["mean_network_calls"] == N_TIMESTEPS
    assert settings["ddim3-cold"]["mean_network_calls"] == 3
    # fast: a 2-call cold plan, then 1-call warm replans (k=8 of 64 steps -> 2 * 8/64 rounds to 1)
    assert settings["fast"]["mean_network_calls"] == pytest.approx((2 + 1) / 2)
    for row in settings.values():
        assert row["plan_ms_p95"] >= row["plan_ms_median"] > 0 and row["replans_per_s"] > 0
        assert len(row["scores"]) == row["episodes"] and row["threads"] == 1 and not row["compiled"]
    assert settings["fast"]["seeds"][:1] == settings["naive"]["seeds"]  # same starts and goals
    every_step = record["fast_every_step"]
    assert every_step["replan_every"] == 1 and every_step["plan_calls"] == 5
    assert [row["key"] for row in record["open_loop"]] == ["naive", "fast"]
    for row in record["open_loop"]:  # the reference protocol: one plan per episode
        assert row["replan_every"] is None and row["plan_calls"] == row["episodes"] == 2
    check_targets(record, ["replan speed-up", "score kept", "closed-loop rate"])
    assert record["machine"]["torch"] and record["seed"] == 0 and "--episodes" in record["command"]

    report = out.with_name("perf.md").read_text()
    assert report.count("<!-- perf:replan -->") == 1 and "<!-- /perf:replan -->" in report
    for row in record["settings"]:
        assert row["label"] in report
    assert "no GPU" in report or "measured on" in report
    assert out.with_name("perf_latency_vs_score.png").stat().st_size > 0


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="shipped checkpoint missing")
def test_soak_snapshots_each_episode_and_keeps_other_sections(replan_run):
    out = replan_run[0].with_name("perf_soak.json")
    assert load_script("planner_soak").main(["--checkpoint", str(CHECKPOINT), "--replans", "8",
                                             "--episode-steps", "4", "--out", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert record["replans"] == 8 and [s["replans"] for s in record["trace"]] == [0, 4, 8]
    assert record["before"]["rss_mb"] > 0 and record["after"]["open_files"] > 0
    check_targets(record, ["planner memory flat", "no thread leak", "no file leak"])
    report = out.with_name("perf.md").read_text()
    assert "<!-- perf:soak -->" in report and "<!-- perf:replan -->" in report  # both sections kept


def test_train_throughput_times_both_loops(tmp_path):
    out = tmp_path / "perf_train.json"
    assert load_script("train_throughput").main(["--synthetic", "3", "--steps", "2", "--warmup", "1",
                                                 "--repeats", "2", "--batch-size", "2", "--threads", "1",
                                                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    for loop in ("plain", "trainer"):
        assert len(record["samples_per_s"][loop]) == 2 and min(record["samples_per_s"][loop]) > 0
        assert record["best_samples_per_s"][loop] == max(record["samples_per_s"][loop])
    assert record["batch_size"] == 2 and record["parameters"] > 0
    check_targets(record, ["trainer throughput"])
    assert "| trainer |" in out.with_name("perf.md").read_text()


def test_update_section_replaces_only_its_own_section(tmp_path):
    report = load_script("_report")
    path = tmp_path / "perf.md"
    report.update_section(path, "a", "first A")
    report.update_section(path, "b", "only B")
    report.update_section(path, "a", "second A")
    text = path.read_text()
    assert "second A" in text and "first A" not in text and "only B" in text
    assert text.index("second A") < text.index("only B") and text.startswith(report.PERF_TITLE)
    with pytest.raises(ValueError, match="section name"):
        report.update_section(path, "Bad Name", "x")


@pytest.mark.parametrize("script, options, message", [
    ("replan_benchmark", ["--replan-every", "0"], "--replan-every must be >= 1"),
    ("replan_benchmark", ["--episodes", "2", "--naive-episodes", "3"], "cannot exceed"),
    ("replan_benchmark", ["--threads", "many"], "--threads must be"),
    ("planner_soak", ["--replans", "0"], "--replans must be >= 1"),
    ("train_throughput", ["--dataset", "missing.hdf5"], "dataset not found"),
])
def test_bad_options_fail_with_a_clear_message(script, options, message, capsys):
    with pytest.raises(SystemExit):
        load_script(script).main(options)
    assert message in capsys.readouterr().err


def test_targets_follow_the_measured_numbers():
    replan = load_script("replan_benchmark")
    naive = {"replans_per_s": 1.0, "episodes": 2, "scores": [100.0, 80.0], "success_rate": 1.0}
    every_step = {"loop_hz": 19.0, "plan_ms_p95": 40.0}
    # the score is compared on the naive run's episodes only: (90 + 85) / 2 = 87.5 vs 90 = 2.8 % loss
    fast = {"replans_per_s": 25.0, "scores": [90.0, 85.0, 0.0]}
    assert [t.met for t in replan.replan_targets(naive, fast, every_step)] == [True, True, False]
    slower_and_worse = {"replans_per_s": 19.0, "scores": [80.0, 80.0]}
    assert [t.met for t in replan.replan_targets(naive, slower_and_worse, {**every_step, "loop_hz": 20.0})
            ] == [False, False, True]
    # when the naive reference fails too, equal scores are no evidence: the target is not met
    failing = {**naive, "scores": [-17.0, -17.0], "success_rate": 0.0}
    score_target = replan.replan_targets(failing, {**fast, "scores": [-17.0, -17.0]}, every_step)[1]
    assert not score_target.met and "not assessable" in score_target.measured

    soak = load_script("planner_soak")
    before = soak.ProcessSnapshot(0, 100.0, 100.0, 2, 6)
    flat, leaking = soak.ProcessSnapshot(10, 104.9, 105.0, 2, 6), soak.ProcessSnapshot(10, 105.0, 105.0, 3, 7)
    assert [t.met for t in soak.soak_targets(before, flat)] == [True] * 3
    assert [t.met for t in soak.soak_targets(before, leaking)] == [False] * 3

    train = load_script("train_throughput")
    assert train.throughput_target({"plain": 100.0, "trainer": 50.0}).met
    assert not train.throughput_target({"plain": 100.0, "trainer": 49.0}).met


def straight_line_windows(planner, count=8, seed=0):
    """Normalized point-mass windows moving at constant velocity (no dataset needed)."""
    import numpy as np
    import torch

    rng, steps = np.random.default_rng(seed), np.arange(planner.horizon)[:, None] * 0.01
    windows = []
    for _ in range(count):
        start, velocity = rng.uniform([1.0, 1.0], [1.2, 3.0]), rng.uniform(-0.5, 0.5, 2)
        observations = np.concatenate([start + steps * velocity, np.tile(velocity, (planner.horizon, 1))], axis=1)
        actions = np.zeros((planner.horizon, planner.action_dim))
        windows.append(planner.normalizer.normalize(np.concatenate([actions, observations], axis=1).astype(np.float32)))
    return torch.tensor(np.stack(windows))


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="shipped checkpoint missing")
def test_start_influence_tells_a_trained_model_from_an_untrained_one():
    """The shipped U-Maze model's plans follow their start (measured ~0.7); the same network
    untrained does not (~0.05)."""
    import torch

    from diffuser_core.model.diffusion import build_diffusion
    from diffuser_core.planning.planner import Planner, PlannerConfig

    influence = load_script("start_influence").start_influence
    trained = Planner.from_checkpoint(CHECKPOINT, PlannerConfig())
    untrained = Planner(build_diffusion(4, 2, trained.diffusion.network.config, trained.diffusion.config),
                        trained.normalizer, PlannerConfig(horizon=trained.horizon), "cpu")
    windows = straight_line_windows(trained)
    for fraction in (0.2, 0.9):
        assert influence(trained, windows, [0, 1], fraction, torch.Generator().manual_seed(0)) > 0.4
        assert influence(untrained, windows, [0, 1], fraction, torch.Generator().manual_seed(0)) < 0.2


def test_start_influence_writes_json_and_markdown(tmp_path):
    from tests.core.test_cli import write_config, write_toy_hdf5

    data, config, run = tmp_path / "toy.hdf5", tmp_path / "run.yaml", tmp_path / "run"
    write_toy_hdf5(data)
    write_config(config)
    from diffuser_core.cli import main as cli

    assert cli(["train", "--config", str(config), "--dataset", str(data), "--out", str(run)]) == 0
    out = tmp_path / "influence.json"
    bench = load_script("start_influence")
    assert bench.main(["--checkpoints", str(run / "latest.safetensors"), "--data", str(data), "--windows", "4",
                       "--noise", "0.5", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["results"][0]["training_step"] == 3 and math.isfinite(record["results"][0]["influence"]["0.5"])
    assert "| noise 0.5 |" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        bench.main(["--checkpoints", str(run / "latest.safetensors"), "--data", str(data), "--dims", "9"])


def test_hierarchy_latency_bench_times_flat_and_hierarchical_plans(tmp_path):
    out = tmp_path / "perf_hierarchy.json"
    assert load_script("hierarchy_latency").main(["--mazes", "medium", "--episodes", "1", "--episode-steps", "12",
                                                  "--replan-every", "6", "--cold-steps", "2", "--warm-steps", "4",
                                                  "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert {row["stride"] for row in record["rows"]} == {1, 15}
    assert all(row["plans"] == 2 and row["plan_ms_median"] > 0 for row in record["rows"])
    assert record["git_commit"] and len(record["checkpoint_sha256"]) == 2
    assert "hierarchical" in out.with_suffix(".md").read_text()


def test_training_curve_evaluates_every_kth_checkpoint_of_a_run(tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    for step in (1000, 1500, 2000):
        shutil.copyfile(ROOT / "checkpoints" / "maze2d_medium_hl.safetensors", run / f"step_{step:07d}.safetensors")
    out = tmp_path / "curve.json"
    assert load_script("training_curve").main(["--run", str(run), "--maze", "medium", "--every", "1000",
                                               "--episodes", "1", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [row["step"] for row in record["rows"]] == [1000, 2000]
    assert record["rows"][0]["score"] == record["rows"][1]["score"]  # same weights, same seeded episode
    assert out.with_suffix(".png").is_file() and "| 2000 |" in out.with_suffix(".md").read_text()


def test_blocked_corridor_counts_entries_of_every_setting(tmp_path):
    out = tmp_path / "blocked.json"
    assert load_script("blocked_corridor").main(["--episodes", "2", "--candidates", "2", "--episode-steps", "300",
                                                 "--latency-candidates", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    unguided, guided, guided_unshielded, unguided_shielded = record["results"]
    assert unguided["config"]["costmap_weight"] == 0 and guided["config"]["candidates"] == 2
    assert guided["config"]["costmap_shield"] and not guided_unshielded["config"]["costmap_shield"]
    assert unguided_shielded["config"]["costmap_shield"] and unguided_shielded["episodes_entering"] == 0
    assert unguided["config"]["route_reach"] == 0 and guided["config"]["route_reach"] > 0
    assert all(len(result["per_episode"]) == 2 for result in record["results"])
    # the unguided model's shortest route runs through the blocked cell (it is a keep-out zone, not a wall)
    assert unguided["episodes_entering"] >= 1 and unguided["blocked_steps"] > 0
    assert "| unguided |" in out.with_suffix(".md").read_text() and out.with_suffix(".png").is_file()


def test_value_guidance_compares_inpainting_start_only_and_each_scale(tmp_path):
    out = tmp_path / "value.json"
    assert load_script("value_guidance").main(["--episodes", "1", "--scales", "300", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [row["setting"] for row in record["results"]] == [
        "goal inpainting", "start only (no goal, no guide)", "value guidance, scale 300"]
    assert record["results"][2]["guide_scale"] == 300 and len(record["checkpoint_sha256"]) == 2
    assert "| value guidance, scale 300 |" in out.with_suffix(".md").read_text() and out.with_suffix(".png").is_file()


def test_the_classical_limits_run_the_expert_and_the_route_on_the_same_episodes(tmp_path):
    out = tmp_path / "classical.json"
    assert load_script("classical_maze2d").main(["--maze", "umaze", "--episodes", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    expert, route = record["rows"]
    assert "expert" in expert["planner"] and "route" in route["planner"]
    assert [e["seed"] for e in expert["per_episode"]] == [e["seed"] for e in route["per_episode"]]
    assert expert["success_rate"] == route["success_rate"] == 1.0 and "| planner |" in out.with_suffix(".md").read_text()


def test_the_map_loop_choices_change_one_setting_each_on_the_same_episodes(tmp_path):
    out = tmp_path / "choices.json"
    assert load_script("map_loop_choices").main([
        "--scenario", "maze2d_umaze", "--episodes", "1", "--episode-steps", "30", "--out", str(out),
        "--choices", "shipped scenario", "one candidate per plan"]) == 0
    record = json.loads(out.read_text())
    shipped, single = record["rows"]
    assert shipped["changes"] == {} and single["changes"] == {"candidates": 1} and single["candidates"] == 1
    assert "| choice |" in out.with_suffix(".md").read_text()


def test_the_speed_bench_and_its_device_script_run_on_the_cpu_without_gpu_providers(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(["bash", str(root / "scripts" / "gpu_bench.sh"), "--episodes", "1", "--calls", "2",
                             "--scenarios", "maze2d_umaze"], env={**os.environ, "OUT": str(tmp_path),
                                                                  "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "inference_speed_cpu.json").read_text())
    assert {row["backend"] for row in record["replans"]} == {"torch", "onnx", "auto"}
    assert all(set(row["ms"]) == {"torch (eager)", "TorchScript (frozen)", "ONNX Runtime"} for row in record["denoiser"])
    assert "CPUExecutionProvider" in result.stdout and (tmp_path / "inference_speed_cpu.md").is_file()
