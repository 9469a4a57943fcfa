"""Checkpoints: one safetensors file, bitwise-identical plans after reload, clear errors."""
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from diffuser_core.checkpoint import (
    CheckpointConfig,
    CheckpointError,
    load_checkpoint,
    load_training_state,
    load_value_checkpoint,
    save_checkpoint,
)
from diffuser_core.config import UnetConfig, ValueConfig
from diffuser_core.model.value import ValueModel, ValueObjective
from diffuser_core.planning.planner import Planner, PlannerConfig

from .toy import ACT_DIM, HORIZON, OBS_DIM, TOY_DIFFUSION, checkpoint_config, tiny_diffusion


def planned(planner):
    plan = planner.plan(np.array([1.0, -2.0]), goal=np.array([-1.5, 2.5]))
    return np.concatenate([plan.observations, plan.actions], axis=1)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_save_load_gives_bitwise_identical_plans(trained_toy, toy_normalizer, tmp_path, sampler):
    trainer = trained_toy[0]
    path = save_checkpoint(tmp_path / "model.safetensors", trainer.ema.model, toy_normalizer,
                           checkpoint_config())
    config = PlannerConfig(sampler=sampler, denoising_steps=None if sampler == "ddpm" else 5,
                           eta=0.5, seed=7, horizon=HORIZON)
    original = Planner(trainer.ema.model, toy_normalizer, config)
    reloaded = Planner.from_checkpoint(path, PlannerConfig(sampler=sampler, eta=0.5, seed=7,
                                                           denoising_steps=config.denoising_steps))
    assert reloaded.horizon == HORIZON  # taken from the checkpoint
    assert np.array_equal(planned(original), planned(reloaded))
    assert np.array_equal(planned(original), planned(reloaded))  # and the RNG streams stay equal


def test_trainer_checkpoint_holds_config_and_training_state(trained_toy):
    trainer = trained_toy[0]
    diffusion, normalizer, config = load_checkpoint(trainer.out_dir / "latest.safetensors")
    assert config.step == 400 and config.env == "toy-lines" and config.kind == "diffusion"
    assert config.unet == trainer.checkpoint_config.unet and config.diffusion == TOY_DIFFUSION
    assert not diffusion.training and (normalizer.observation_dim, normalizer.action_dim) == (2, 2)
    for name, value in trainer.ema.model.state_dict().items():
        assert torch.equal(diffusion.state_dict()[name], value)
    state, _, _ = load_training_state(trainer.out_dir / "latest.safetensors")
    assert set(state.model) == set(trainer.objective.state_dict())
    assert state.optimizer["state"][0]["step"] == 400


def test_start_embedding_model_round_trips(tmp_path, toy_normalizer):
    unet = UnetConfig(dim=8, dim_mults=(1, 2), start_embedding=True)
    model = tiny_diffusion(unet=unet)
    path = save_checkpoint(tmp_path / "m.safetensors", model, toy_normalizer,
                           checkpoint_config(unet=unet))
    reloaded, _, config = load_checkpoint(path)
    assert config.unet.start_embedding and reloaded.network.start_embedding is not None
    x, t = torch.randn(2, HORIZON, OBS_DIM + ACT_DIM), torch.tensor([1, 5])
    assert torch.equal(model.eval().network(x, t), reloaded.network(x, t))


def test_file_is_plain_safetensors_with_json_config(tmp_path, toy_normalizer):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_diffusion(), toy_normalizer,
                           checkpoint_config())
    raw = path.read_bytes()
    (header_size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_size])
    config = json.loads(header["__metadata__"]["diffuser_config"])
    assert config["observation_dim"] == OBS_DIM and config["horizon"] == HORIZON
    assert "normalizer.observations.scale" in header and "ema.network.final.1.weight" in header
    assert not any(key.startswith("optimizer.") for key in header)  # planning-only file


def test_corrupted_checkpoint_raises_checkpoint_error(tmp_path, toy_normalizer):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_diffusion(), toy_normalizer,
                           checkpoint_config())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    assert issubclass(CheckpointError, ValueError)


def test_mismatched_checkpoints_raise_checkpoint_error(tmp_path, toy_normalizer):
    wrong_size = save_checkpoint(tmp_path / "a.safetensors", tiny_diffusion(), toy_normalizer,
                                 checkpoint_config(unet=UnetConfig(dim=8, dim_mults=(1, 2))))
    with pytest.raises(CheckpointError, match="does not match its model config"):
        load_checkpoint(wrong_size)
    with pytest.raises(CheckpointError, match="expected 'value'"):
        load_value_checkpoint(wrong_size)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a diffuser_ros checkpoint"):
        load_checkpoint(foreign)
    planning_only = save_checkpoint(tmp_path / "b.safetensors", tiny_diffusion(), toy_normalizer,
                                    checkpoint_config())
    with pytest.raises(CheckpointError, match="no training state"):
        load_training_state(planning_only)


def test_future_format_version_is_rejected(tmp_path, toy_normalizer):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_diffusion(), toy_normalizer,
                           checkpoint_config())
    tensors, metadata = {}, {}
    from safetensors import safe_open
    with safe_open(str(path), "pt") as file:
        metadata = file.metadata()
        tensors = {k: file.get_tensor(k) for k in file.keys()}
    config = json.loads(metadata["diffuser_config"])
    config["format_version"] = 99
    save_file(tensors, path, {"diffuser_config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_value_checkpoint_round_trip(tmp_path, toy_normalizer):
    torch.manual_seed(0)
    value_config = ValueConfig(dim=8, dim_mults=(1, 2), hidden_dim=16)
    objective = ValueObjective(ValueModel(OBS_DIM + ACT_DIM, value_config), 10, ACT_DIM)
    config = CheckpointConfig("value", OBS_DIM, ACT_DIM, HORIZON, diffusion=TOY_DIFFUSION,
                              value=value_config)
    path = save_checkpoint(tmp_path / "value.safetensors", objective, toy_normalizer, config)
    model, _, loaded = load_value_checkpoint(path)
    x, t = torch.randn(3, HORIZON, OBS_DIM + ACT_DIM), torch.tensor([0, 4, 9])
    assert loaded.value == value_config
    assert torch.equal(model(x, t), objective.value_model(x, t))
    assert model(x, t).shape == (3,)
