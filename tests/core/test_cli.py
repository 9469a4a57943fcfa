"""`diffuser-ros` CLI: help texts, and train -> resume -> sample -> plot end to end on toy data."""
import h5py
import numpy as np
import pytest
import torch
import yaml

from diffuser_core.checkpoint import load_checkpoint
from diffuser_core.cli import main
from diffuser_core.config import ExperimentConfig

from .toy import line_episodes

PNG_MAGIC = b"\x89PNG"


@pytest.mark.parametrize("argv, expected", [
    (["--help"], "{train,sample,plot,export}"), (["train", "--help"], "--loader"),
    (["sample", "--help"], "--goal-dims"), (["plot", "--help"], "--walls")])
def test_help_lists_the_options(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


def write_toy_hdf5(path):
    """Line episodes concatenated D4RL-style, split by timeouts."""
    episodes = line_episodes(count=8, length=16)
    timeouts = np.concatenate([np.arange(len(e)) == len(e) - 1 for e in episodes])
    with h5py.File(path, "w") as file:
        file["observations"] = np.concatenate([e.observations for e in episodes])
        file["actions"] = np.concatenate([e.actions for e in episodes])
        file["rewards"] = np.concatenate([e.observations[:, 0] for e in episodes])
        file["timeouts"] = timeouts
        file["terminals"] = np.zeros_like(timeouts)


def write_config(path, **training):
    config = {"env": "toy-lines", "loader": "hdf5",
              "model": {"dim": 8, "dim_mults": [1, 2]},
              "diffusion": {"n_timesteps": 5, "condition_on": "start_goal"},
              "value": {"dim": 8, "dim_mults": [1, 2], "hidden_dim": 16},
              "dataset": {"horizon": 8},
              "training": {"steps": 3, "batch_size": 4, "checkpoint_every": 2, "log_every": 1,
                           "progress": False, "device": "cpu", **training}}
    path.write_text(yaml.safe_dump(config))


def test_train_resume_sample_and_plot(tmp_path):
    data, config, run = tmp_path / "toy.hdf5", tmp_path / "run.yaml", tmp_path / "run"
    write_toy_hdf5(data)
    write_config(config)
    assert main(["train", "--config", str(config), "--dataset", str(data), "--out", str(run)]) == 0
    assert (run / "step_0000002.safetensors").is_file() and (run / "latest.safetensors").is_file()
    main(["train", "--config", str(config), "--dataset", str(data), "--out", str(run),
          "--resume", str(run / "latest.safetensors"), "--steps", "4"])
    assert (run / "step_0000004.safetensors").is_file()

    plans = tmp_path / "plans.npz"
    main(["sample", "--checkpoint", str(run / "latest.safetensors"), "--start", "1", "-2",
          "--goal", "-1.5", "2.5", "--n", "3", "--steps", "3", "--out", str(plans)])
    with np.load(plans) as saved:
        observations, chain = saved["observations"], saved["chain"]
    assert observations.shape == (3, 8, 2) and chain.shape == (3, 4, 8, 2)
    assert np.allclose(observations[:, 0], [1, -2]) and np.allclose(observations[:, -1], [-1.5, 2.5])

    exported = tmp_path / "planning.safetensors"
    main(["export", str(run / "latest.safetensors"), "--out", str(exported)])
    from diffuser_core.checkpoint import read_checkpoint
    tensors, _, exported_config = read_checkpoint(exported)
    assert exported_config.step == 4 and not any(k.startswith(("model.", "optimizer.")) for k in tensors)
    assert exported.stat().st_size < (run / "latest.safetensors").stat().st_size
    exported_plans = tmp_path / "exported.npz"
    main(["sample", "--checkpoint", str(exported), "--start", "1", "-2", "--goal", "-1.5", "2.5",
          "--n", "3", "--steps", "3", "--out", str(exported_plans)])
    with np.load(exported_plans) as saved:
        assert np.array_equal(saved["observations"], observations)  # same EMA weights, same seed

    half = tmp_path / "half.safetensors"
    main(["export", str(run / "latest.safetensors"), "--out", str(half), "--half"])
    tensors, _, _ = read_checkpoint(half)
    assert {v.dtype for k, v in tensors.items() if k.startswith("ema.") and v.is_floating_point()} == {torch.float16}
    assert all(v.dtype == torch.float32 for k, v in tensors.items() if k.startswith("normalizer."))
    assert half.stat().st_size < 0.6 * exported.stat().st_size
    model, _, _ = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    half_plans = tmp_path / "half.npz"
    main(["sample", "--checkpoint", str(half), "--start", "1", "-2", "--goal", "-1.5", "2.5",
          "--n", "3", "--steps", "3", "--out", str(half_plans)])
    with np.load(half_plans) as saved:
        assert np.allclose(saved["observations"], observations, atol=0.1)  # float16 rounding only

    walls = tmp_path / "walls.npy"
    np.save(walls, np.eye(6, dtype=bool))
    figure = tmp_path / "fig" / "plans.png"
    main(["plot", str(plans), "--out", str(figure), "--walls", str(walls),
          "--extent", "-3", "3", "-3", "3"])
    assert figure.read_bytes()[:4] == PNG_MAGIC
    assert (tmp_path / "fig" / "plans_denoising.png").read_bytes()[:4] == PNG_MAGIC


def test_train_value_model(tmp_path):
    data, config = tmp_path / "toy.hdf5", tmp_path / "run.yaml"
    write_toy_hdf5(data)
    write_config(config, steps=2)
    main(["train", "--config", str(config), "--dataset", str(data), "--out", str(tmp_path / "v"),
          "--objective", "value"])
    from diffuser_core.checkpoint import load_value_checkpoint
    model, _, loaded = load_value_checkpoint(tmp_path / "v" / "latest.safetensors")
    assert loaded.kind == "value" and loaded.step == 2


def test_bad_config_loader_and_checkpoint_give_clear_errors(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model": {"dims": 8}}))
    with pytest.raises(ValueError, match="unknown UnetConfig field"):
        ExperimentConfig.from_file(config)
    assert main(["train", "--config", str(config), "--dataset", "x.hdf5", "--out", str(tmp_path)]) == 2
    assert "diffuser-ros train: unknown UnetConfig field" in capsys.readouterr().err
    write_config(config)
    assert main(["train", "--config", str(config), "--dataset", "x.hdf5", "--out", str(tmp_path),
                 "--loader", "nope"]) == 2
    assert "unknown dataset loader" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "o")]) == 2
    assert "diffuser-ros export: checkpoint not found" in capsys.readouterr().err


def test_training_warns_when_the_unet_is_narrower_than_the_trajectory(capsys):
    from diffuser_core.cli import warn_if_unet_narrower_than_trajectory

    warn_if_unet_narrower_than_trajectory(32, 39)
    assert "model.dim=32 is narrower than the trajectory's 39 dimensions" in capsys.readouterr().err
    warn_if_unet_narrower_than_trajectory(64, 39)
    assert capsys.readouterr().err == ""
