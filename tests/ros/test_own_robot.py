"""The README's "Your own robot" path end to end on tiny settings: demonstrations of the differential-drive
robot driven over ROS by its scripted expert and recorded (`bringup ... --record --exit-with`), the
recording turned into a training set (`diffuser-ros dataset from-bag`), a short training (2000 steps of a tiny model),
and the planner, pointed at the robot by its scenario file, driving it to a goal (`diffuser_ros.demo`)."""
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from diffuser_core.data.datasets import load_hdf5_episodes
from diffuser_ros.cli import main as diffuser_ros_cli

ROOT = Path(__file__).resolve().parents[2]
TINY_EXPERIMENT = {
    "env": "diffdrive-room", "loader": "hdf5",
    "model": {"dim": 16, "dim_mults": [1, 2]},
    "diffusion": {"n_timesteps": 10, "predict_epsilon": False, "clip_denoised": True, "condition_on": "start_goal"},
    "dataset": {"horizon": 32, "normalizer": "limits", "padding": "none"},
    "training": {"steps": 2000, "batch_size": 16, "learning_rate": 0.001, "checkpoint_every": 2000, "log_every": 100,
                 "seed": 0, "progress": False},
}

# one cell up the corridor between the room's blocks, facing the goal: a move the expert makes often (its
# routes join cell centres), so a tiny model trained briefly plans it (a start near a corner it rarely saw
# sent one such model wandering)
CORRIDOR_START, CORRIDOR_GOAL = ("2.8", "0.8", "1.5708"), ("2.8", "1.8")


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def record_demonstrations(tmp_path: Path, goals: int) -> Path:
    """A short recording of the expert driving the robot to `goals` goals, in simulated time."""
    overrides = write_yaml(tmp_path / "record.yaml", {"diffdrive_expert": {"ros__parameters": {"goals": goals, "seed": 3}},
                                                                "diffdrive_sim": {"ros__parameters": {"real_time_factor": 10.0}}})
    recording = tmp_path / "demos.mcap"
    result = subprocess.run([sys.executable, "-m", "diffuser_ros.bringup", "diffdrive_record", "--use-sim-time",
                             "--record", str(recording), "--exit-with", "diffdrive_expert", "--params-file",
                             str(overrides)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "diffdrive_expert exited" in result.stdout
    return recording


def scenario_with(tmp_path: Path, checkpoint: Path) -> Path:
    """config/diffdrive_room.yaml with the planner pointed at `checkpoint`; a tiny model's plans are
    rough, so the goal counts as reached within 0.4 m (the shipped model is measured at 0.2 m)."""
    scenario = yaml.safe_load((ROOT / "config" / "diffdrive_room.yaml").read_text())
    scenario["diffuser_planner"]["ros__parameters"].update(checkpoint=str(checkpoint), goal_tolerance=0.4)
    return write_yaml(tmp_path / "my_robot.yaml", scenario)


def test_record_convert_train_and_deploy_a_robot_the_core_has_never_seen(tmp_path, fresh_ros_domain):
    recording = record_demonstrations(tmp_path, goals=20)
    dataset = tmp_path / "demos.hdf5"
    assert diffuser_ros_cli(["dataset", "from-bag", str(recording), "--scenario", "diffdrive_room", "--goal",
                             "goal_pose", "--out", str(dataset)]) in (0, None)
    episodes = load_hdf5_episodes(str(dataset))
    assert len(episodes) >= 10 and all(episode.observations.shape[1] == 6 for episode in episodes)
    assert all(episode.actions.shape[1] == 2 for episode in episodes)

    experiment = write_yaml(tmp_path / "tiny.yaml", TINY_EXPERIMENT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only wait on each other (badly so beside a busy core)
    try:
        diffuser_ros_cli(["train", "--config", str(experiment), "--dataset", str(dataset), "--out", str(tmp_path / "run")])
    finally:
        torch.set_num_threads(threads)
    checkpoint = tmp_path / "run" / "step_0002000.safetensors"
    assert checkpoint.is_file()

    result = subprocess.run([sys.executable, "-m", "diffuser_ros.demo", "--scenario",
                             str(scenario_with(tmp_path, checkpoint)), "--start", *CORRIDOR_START, "--goal", *CORRIDOR_GOAL,
                             "--timeout", "60", "--plot", str(tmp_path / "run.png")],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and "demo: SUCCESS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
