"""Checkpoints: ONE .safetensors file per checkpoint, no pickle.

Tensors:  "ema.*"          EMA weights (what planning uses), always present
          "normalizer.*"   normalizer statistics
          "model.*", "optimizer.state.<param>.<name>", "training.generator"
                           raw weights, AdamW state and the noise RNG: only in training
                           checkpoints (written by the Trainer; needed to resume exactly)
Metadata: "diffuser_config" JSON of CheckpointConfig (model/diffusion configs, dims, horizon,
          stride between plan states, env, training step, dataset info); "optimizer_param_groups" JSON in training files.
The "ema.*" tensors are the state dict of a GaussianDiffusion (kind "diffusion") or of a
ValueObjective (kind "value"); schedule constants are rebuilt from the config.
A steps-to-go model (model/steps_to_go) is a file of its own: its state dict (weights and input
normalization) and its StepsToGoConfig as JSON under "steps_to_go_config".
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.model.diffusion import GaussianDiffusion, build_diffusion
from diffuser_core.model.steps_to_go import StepsToGo, StepsToGoConfig
from diffuser_core.model.value import ValueModel, ValueObjective

from .config import DiffusionConfig, UnetConfig, ValueConfig, from_dict, to_dict

FORMAT_VERSION = 1
CONFIG_KEY = "diffuser_config"
PARAM_GROUPS_KEY = "optimizer_param_groups"
STEPS_TO_GO_KEY = "steps_to_go_config"
KINDS = ("diffusion", "value")


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupted, or does not match the model it should hold."""


@dataclass
class CheckpointConfig:
    """Everything needed to rebuild the model a checkpoint holds."""

    kind: str
    observation_dim: int
    action_dim: int
    horizon: int
    normalizer: str = "limits"
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    unet: UnetConfig | None = None  # kind "diffusion"
    value: ValueConfig | None = None  # kind "value"
    env: str = ""
    step: int = 0
    dataset: dict[str, Any] = field(default_factory=dict)
    stride: int = 1  # env steps between plan states: 1 a dense model, K > 1 a high-level (subgoal) model

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"checkpoint kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"checkpoint stride must be a positive integer, got {self.stride!r}")
        if self.kind == "diffusion" and self.unet is None:
            self.unet = UnetConfig()
        if self.kind == "value" and self.value is None:
            self.value = ValueConfig()

    def to_json(self) -> str:
        """The JSON stored under the "diffuser_config" metadata key."""
        return json.dumps({"format_version": FORMAT_VERSION, **to_dict(self)})

    @classmethod
    def from_json(cls, text: str) -> "CheckpointConfig":
        """Parse to_json() output; ValueError on another format version or unknown fields."""
        data = json.loads(text)
        version = data.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ValueError(f"checkpoint format version {version}, this code reads {FORMAT_VERSION}")
        sections = {"diffusion": DiffusionConfig, "unet": UnetConfig, "value": ValueConfig}
        for name, kind in sections.items():
            if data.get(name) is not None:
                data[name] = from_dict(kind, data[name])
        return from_dict(cls, data)


@dataclass
class TrainingState:
    """What a training checkpoint adds to the planning weights, to resume bit-for-bit."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor


def build_model(config: CheckpointConfig) -> nn.Module:
    """The (untrained) module whose state a checkpoint of this config stores."""
    if config.kind == "diffusion":
        return build_diffusion(config.observation_dim, config.action_dim, config.unet, config.diffusion)
    transition_dim = config.observation_dim + config.action_dim
    return ValueObjective(ValueModel(transition_dim, config.value), config.diffusion.n_timesteps,
                          config.action_dim, config.diffusion.condition_on)


def save_checkpoint(path: str | Path, model: nn.Module, normalizer: TrajectoryNormalizer,
                    config: CheckpointConfig, training_state: TrainingState | None = None,
                    weight_dtype: torch.dtype | None = None) -> Path:
    """Write planning weights `model` (the EMA module), normalizer and config to one file,
    atomically; with `training_state` the file can also resume training. `weight_dtype`
    (e.g. torch.float16) stores the planning weights smaller; loading casts them back to float32."""
    weights = model.state_dict()
    if weight_dtype is not None:
        weights = {name: value.to(weight_dtype) if value.is_floating_point() else value
                   for name, value in weights.items()}
    tensors = _prefixed("ema.", weights)
    tensors.update(_prefixed("normalizer.", normalizer.state_dict()))
    metadata = {CONFIG_KEY: config.to_json()}
    if training_state is not None:
        tensors.update(_prefixed("model.", training_state.model))
        optimizer_tensors, param_groups = _flatten_optimizer(training_state.optimizer)
        tensors.update(optimizer_tensors)
        tensors["training.generator"] = training_state.generator
        metadata[PARAM_GROUPS_KEY] = json.dumps(param_groups)
    return write_safetensors(path, tensors, metadata)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write tensors and string metadata to one .safetensors file atomically (readers never see
    a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, temporary, metadata)
    os.replace(temporary, path)
    return path


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file; CheckpointError if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as file:
            return {key: file.get_tensor(key) for key in file.keys()}, file.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path} (corrupted or not safetensors): "
                              f"{error}") from error


def read_model_file(path: str | Path, key: str, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, the JSON info stored under metadata `key`) of a small model's .safetensors file;
    ValueError when the file is not a `kind` file."""
    tensors, metadata = read_safetensors(path)
    if key not in metadata:
        raise ValueError(f"{path} is not a {kind} file (no '{key}' metadata)")
    return tensors, json.loads(metadata[key])


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], CheckpointConfig]:
    """(tensors, metadata, config) of a checkpoint file; CheckpointError if unreadable."""
    tensors, metadata = read_safetensors(path)
    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path} has no '{CONFIG_KEY}' metadata: not a diffuser_ros checkpoint")
    try:
        config = CheckpointConfig.from_json(metadata[CONFIG_KEY])
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} has an invalid '{CONFIG_KEY}': {error}") from error
    return tensors, metadata, config


def load_checkpoint(path: str | Path, device="cpu"
                    ) -> tuple[GaussianDiffusion, TrajectoryNormalizer, CheckpointConfig]:
    """(diffusion model with EMA weights in eval mode, normalizer, config) of a diffusion checkpoint."""
    model, normalizer, config = _load_planning_module(path, "diffusion", device)
    return model, normalizer, config


def load_value_checkpoint(path: str | Path, device="cpu"
                          ) -> tuple[ValueModel, TrajectoryNormalizer, CheckpointConfig]:
    """(value model with EMA weights in eval mode, normalizer, config) of a value checkpoint."""
    objective, normalizer, config = _load_planning_module(path, "value", device)
    return objective.value_model, normalizer, config


def load_planning_checkpoint(path: str | Path, device="cpu") -> tuple[nn.Module, TrajectoryNormalizer, CheckpointConfig]:
    """(EMA module in eval mode, normalizer, config) of a checkpoint of either kind (what export keeps)."""
    _, _, config = read_checkpoint(path)
    return _load_planning_module(path, config.kind, device)


def load_value_guide(path: str | Path, normalizer: TrajectoryNormalizer, n_timesteps: int, device="cpu"):
    """The guide J = the value checkpoint's predicted return, for plans of a diffusion model with
    `normalizer` and `n_timesteps` diffusion steps (the value model must be trained on that schedule)."""
    from diffuser_core.guidance.guides import ValueGuide

    value_model, value_normalizer, config = load_value_checkpoint(path, device)
    if config.diffusion.n_timesteps != n_timesteps:
        raise CheckpointError(f"{path} was trained on {config.diffusion.n_timesteps} diffusion steps, the planner's "
                              f"model has {n_timesteps}")
    if (value_normalizer.observation_dim, value_normalizer.action_dim) != (normalizer.observation_dim,
                                                                           normalizer.action_dim):
        raise CheckpointError(f"{path} values trajectories of other dimensions than the planner's")
    return ValueGuide(value_model, normalizer, value_normalizer)


def save_steps_to_go(path: str | Path, model: StepsToGo, dataset: dict | None = None) -> Path:
    """Write a steps-to-go model (weights, input normalization, settings) to one file; `dataset`
    says what it was trained on."""
    metadata = {STEPS_TO_GO_KEY: json.dumps({"format_version": FORMAT_VERSION, **model.config.to_dict(),
                                             "dataset": dataset or {}})}
    return write_safetensors(path, dict(model.state_dict()), metadata)


def load_steps_to_go(path: str | Path) -> StepsToGo:
    """The steps-to-go model of a file written by save_steps_to_go, in eval mode on the CPU."""
    tensors, metadata = read_safetensors(path)
    if STEPS_TO_GO_KEY not in metadata:
        raise CheckpointError(f"{path} has no '{STEPS_TO_GO_KEY}' metadata: not a steps-to-go model")
    try:
        settings = json.loads(metadata[STEPS_TO_GO_KEY])
        version = settings.pop("format_version", None)
        settings.pop("dataset", None)
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version}, this code reads {FORMAT_VERSION}")
        model = StepsToGo(StepsToGoConfig(**settings))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} has an invalid '{STEPS_TO_GO_KEY}': {error}") from error
    load_weights(model, tensors, path)
    return model.eval().requires_grad_(False)


def load_training_state(path: str | Path, device="cpu") -> tuple[TrainingState, dict, CheckpointConfig]:
    """(raw-weight training state, EMA state dict, config) to resume training from a checkpoint."""
    tensors, metadata, config = read_checkpoint(path)
    if PARAM_GROUPS_KEY not in metadata or "training.generator" not in tensors:
        raise CheckpointError(f"{path} is a planning-only checkpoint: it has no training state")
    optimizer = _unflatten_optimizer(tensors, json.loads(metadata[PARAM_GROUPS_KEY]), device)
    state = TrainingState(_with_prefix("model.", tensors, device), optimizer,
                          tensors["training.generator"])
    return state, _with_prefix("ema.", tensors, device), config


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """module.load_state_dict, turning a mismatch into a CheckpointError that names the file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path} does not match its model config: {error}") from error


def _load_planning_module(path, kind: str, device):
    tensors, _, config = read_checkpoint(path)
    if config.kind != kind:
        raise CheckpointError(f"{path} holds a {config.kind!r} model, expected {kind!r}")
    try:
        normalizer = TrajectoryNormalizer.from_state_dict(config.normalizer,
                                                          _with_prefix("normalizer.", tensors, "cpu"))
    except ValueError as error:
        raise CheckpointError(f"{path} has invalid normalizer statistics: {error}") from error
    if (normalizer.observation_dim, normalizer.action_dim) != (config.observation_dim, config.action_dim):
        raise CheckpointError(f"{path}: normalizer dims do not match the config's")
    model = build_model(config)
    load_weights(model, _with_prefix("ema.", tensors, "cpu"), path)
    return model.to(device).eval().requires_grad_(False), normalizer, config


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + name: value for name, value in state.items()}


def _with_prefix(prefix: str, tensors: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {name[len(prefix):]: value.to(device) for name, value in tensors.items()
            if name.startswith(prefix)}


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            tensors[f"optimizer.state.{param_id}.{name}"] = torch.as_tensor(value)
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], param_groups: list, device) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer.state."):
            param_id, name = key[len("optimizer.state."):].split(".", 1)
            state.setdefault(int(param_id), {})[name] = value if name == "step" else value.to(device)
    return {"state": state, "param_groups": param_groups}
