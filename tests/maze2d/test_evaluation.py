"""Maze2D evaluation: episode records, seeding, config checks, the standard error, and whether the
shipped U-Maze checkpoint reaches the goal under the reference protocol."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from diffuser_core.planning.planner import Planner
from diffuser_core.tasks.maze2d.env import Maze2DEnv
from diffuser_core.tasks.maze2d.evaluation import (
    Maze2DEpisodeResult,
    Maze2DEvalConfig,
    Maze2DEvalSummary,
    episode_seeds,
    evaluate,
    evaluate_episode,
    standard_error,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "maze2d_umaze.safetensors"
FAST = dict(sampler="ddim", denoising_steps=4, episode_steps=20)  # a cheap, short episode


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/maze2d/conftest.py


def planner_for(config: Maze2DEvalConfig) -> Planner:
    return Planner.from_checkpoint(CHECKPOINT, config.planner_config())


def test_one_short_episode_gives_a_well_formed_summary():
    config = Maze2DEvalConfig(episodes=1, seed=3, **FAST)
    summary = evaluate(CHECKPOINT, config, progress=False)
    episode = summary.episodes[0]
    assert episode.driven_xy.shape == (21, 2) and episode.first_plan.shape == (128, 4)
    np.testing.assert_allclose(episode.first_plan[0], episode.start, atol=1e-6)  # start inpainted
    np.testing.assert_allclose(episode.first_plan[-1], [1.0, 1.0, 0.0, 0.0], atol=1e-6)  # goal, at rest
    np.testing.assert_allclose(episode.driven_xy[0], episode.start[:2])
    assert episode.plan_calls == 1 and episode.plan_ms[0] > 0
    assert 0 <= episode.episode_return <= 20
    assert episode.reached == (episode.episode_return > 0)
    assert episode.normalized_score == pytest.approx(100 * (episode.episode_return - 23.85) / (161.86 - 23.85))
    record = json.loads(json.dumps(summary.to_dict()))  # JSON-ready
    assert record["episodes"] == 1 and record["mean_normalized_score"] == episode.normalized_score
    assert record["checkpoint_step"] > 0 and record["paper_score"] == {"mean": 113.9, "standard_error": 3.1}
    assert record["plan_ms_median"] == pytest.approx(episode.plan_ms[0])


def test_replanning_plans_every_k_steps_from_the_current_state():
    config = Maze2DEvalConfig(replan_every=5, warm_start=True, warm_start_steps=2, **FAST)
    episode = evaluate_episode(Maze2DEnv("umaze"), planner_for(config), config, seed=1)
    assert episode.plan_calls == 4  # steps 0, 5, 10, 15 of 20


def test_same_seed_same_episode_and_multi2d_draws_its_goal_from_the_seed():
    config = Maze2DEvalConfig(multi_goal=True, **FAST)
    env, planner = Maze2DEnv("umaze", multi_goal=True), planner_for(config)
    first, again, other = (evaluate_episode(env, planner, config, seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.driven_xy, again.driven_xy)
    np.testing.assert_array_equal(first.first_plan, again.first_plan)
    np.testing.assert_array_equal(first.goal, again.goal)
    assert first.episode_return == again.episode_return
    assert not np.array_equal(first.start, other.start) and not np.array_equal(first.goal, other.goal)
    assert episode_seeds(0, 3) == episode_seeds(0, 5)[:3]  # adding episodes keeps the earlier ones


@pytest.mark.parametrize("changes, message", [
    ({"maze": "tiny"}, "maze"),
    ({"episodes": 0}, "episodes"),
    ({"episodes": 2.5}, "episodes"),
    ({"seed": -1}, "seed"),
    ({"sampler": "euler"}, "sampler"),
    ({"denoising_steps": 0}, "denoising_steps"),
    ({"replan_every": 0}, "replan_every"),
    ({"episode_steps": -5}, "episode_steps"),
    ({"warm_start": True}, "warm_start needs replan_every"),
    ({"warm_start_steps": 0, "replan_every": 4}, "warm_start_steps"),
    ({"multi_goal": "yes"}, "multi_goal"),
    ({"device": "gpu7"}, "device"),
    ({"candidates": 0}, "candidates"),
    ({"choose_by": "density"}, "choose_by must be one of"),
    ({"choose_by": "vibes", "choice_model": "x.safetensors"}, "choose_by must be one of"),
])
def test_bad_config_values_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        Maze2DEvalConfig(**changes)


def test_a_density_of_the_data_chooses_among_plans_sampled_in_one_batch(tmp_path, monkeypatch):
    """The first plan of an episode is the candidate, of those sampled in one batch, that the visit
    density (here of a band of the maze, y < 2) ranks best."""
    from diffuser_core.model.visit_density import VisitDensity, save_visit_density
    from diffuser_core.tasks.maze2d import evaluation

    band = np.stack(np.meshgrid(np.linspace(0.5, 3.5, 40), np.linspace(0.5, 2.0, 20)), -1).reshape(-1, 2)
    path = save_visit_density(tmp_path / "visits.safetensors", VisitDensity.fit(np.c_[band, band * 0], (0, 1), 0.1))
    seen = []
    rank = evaluation._choice_rank("density", str(path))
    monkeypatch.setattr(evaluation, "_choice_rank", lambda kind, file: lambda plans: seen.append(
        (plans, rank(plans))) or seen[-1][1])
    config = Maze2DEvalConfig(candidates=6, choose_by="density", choice_model=str(path), **FAST)
    episode = evaluate_episode(Maze2DEnv("umaze"), planner_for(config), config, seed=2)
    plans, costs = seen[0]
    assert plans.shape[0] == 6 and np.ptp(costs) > 0 and int(np.argmin(costs)) != 0  # not simply the first
    np.testing.assert_allclose(episode.first_plan, plans[int(np.argmin(costs))], atol=1e-5)


def test_a_checkpoint_of_another_maze_is_rejected():
    with pytest.raises(ValueError, match="maze2d-umaze"):
        evaluate(CHECKPOINT, Maze2DEvalConfig(maze="medium", episodes=1, **FAST), progress=False)


def test_standard_error_is_population_std_over_root_n():
    # values 1..4: mean 2.5, squared deviations 2.25+0.25+0.25+2.25 = 5, std = sqrt(5/4), s.e. = std/2
    assert standard_error([1, 2, 3, 4]) == pytest.approx(np.sqrt(1.25) / 2)
    assert standard_error([100.0, 100.0]) == 0.0
    assert standard_error([42.0]) == 0.0  # as the reference: no spread from one episode
    with pytest.raises(ValueError, match="at least one"):
        standard_error([])
    with pytest.raises(ValueError, match="finite"):
        standard_error([1.0, np.nan])


def test_summary_statistics_over_known_episodes():
    def episode(score, reached, plan_ms):
        return Maze2DEpisodeResult(0, np.zeros(4), np.ones(2), 0.0, score, reached, 10 if reached else None,
                             plan_ms, np.zeros((2, 2)), np.zeros((4, 4)))

    summary = Maze2DEvalSummary("x", 0, Maze2DEvalConfig(episodes=3), [
        episode(110.0, True, [10.0]), episode(130.0, True, [20.0, 30.0]), episode(-10.0, False, [40.0])])
    assert summary.mean_score == pytest.approx(230 / 3)
    assert summary.standard_error == pytest.approx(np.std([110, 130, -10]) / np.sqrt(3))
    assert summary.success_rate == pytest.approx(2 / 3)
    assert summary.plan_latency_ms(50) == pytest.approx(25.0)
    assert summary.to_dict()["mean_steps_to_goal"] == 10.0


def test_bench_script_writes_json_markdown_and_plot(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_maze2d", ROOT / "bench" / "eval_maze2d.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "maze2d_umaze.json"
    assert bench.main(["--checkpoint", str(CHECKPOINT), "--episodes", "2", "--sampler", "ddim",
                       "--steps", "2", "--episode-steps", "10", "--out", str(out), "--plot", "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert record["episodes"] == 2 and record["machine"]["cpu_count"] >= 1 and "--episodes" in record["command"]
    table = out.with_suffix(".md").read_text()
    assert "paper (Janner et al. 2022, Table 1) | 113.9 ± 3.1" in table
    assert f"{record['mean_normalized_score']:.1f}" in table
    assert out.with_suffix(".png").stat().st_size > 0


def test_bench_script_records_the_choice_and_its_model_file(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_maze2d", ROOT / "bench" / "eval_maze2d.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from diffuser_core.model.visit_density import VisitDensity, save_visit_density

    visits = save_visit_density(tmp_path / "visits.safetensors", VisitDensity.fit(np.random.default_rng(0).uniform(
        0.5, 3.5, (500, 4)), (0, 1), 0.1))
    out = tmp_path / "choice.json"
    assert bench.main(["--checkpoint", str(CHECKPOINT), "--episodes", "1", "--sampler", "ddim", "--steps", "2",
                       "--episode-steps", "10", "--candidates", "3", "--choose-by", "density", "--choice-model",
                       str(visits), "--out", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert record["config"]["candidates"] == 3 and record["config"]["choose_by"] == "density"
    assert str(visits) in record["checkpoint_sha256"] and "best of 3 plans by the density model" in record["protocol"]
    assert "3 plans sampled per planning tick" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        bench.main(["--checkpoint", str(CHECKPOINT), "--choose-by", "vibes"])


def test_shipped_checkpoint_reaches_the_umaze_goal_from_the_far_end():
    """Reference protocol (DDPM, all 64 steps, plan once, 300 steps) from cell (3, 1) to (1, 1).
    Depends on how far the shipped checkpoint has been trained."""
    config = Maze2DEvalConfig()
    episode = evaluate_episode(Maze2DEnv("umaze"), planner_for(config), config, seed=0, start_cell=(3, 1))
    assert episode.reached, f"ended at {episode.driven_xy[-1]}, goal {episode.goal}"
    assert episode.normalized_score > 0


def test_node_loop_episode_replans_on_ticks_and_holds_the_goal():
    from diffuser_core.planning.receding import LoopSettings

    every_tick = Maze2DEvalConfig(loop=LoopSettings(replan_rate=20.0, replan_deviation=0.0), warm_start=True,
                                  warm_start_steps=2, **FAST)  # 20 env steps = 0.2 s: ticks at 0, 5, 10, 15
    episode = evaluate_episode(Maze2DEnv("umaze"), planner_for(every_tick), every_tick, seed=1)
    assert episode.plan_calls == 4
    kept = Maze2DEvalConfig(loop=LoopSettings(replan_rate=20.0, replan_deviation=5.0, max_plan_age=10.0), **FAST)
    assert evaluate_episode(Maze2DEnv("umaze"), planner_for(kept), kept, seed=1).plan_calls == 1
    assert "planner node loop" in kept.protocol and "0.5 m" in kept.protocol
    with pytest.raises(ValueError, match="excludes replan_every"):
        Maze2DEvalConfig(loop=LoopSettings(), replan_every=5)
