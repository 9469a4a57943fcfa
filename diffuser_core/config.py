"""Configuration dataclasses for the Diffuser model, its training and its data.

Every config validates itself on construction and raises ValueError with a message that names the
bad field, so a typo in a YAML file fails early instead of deep inside training.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from diffuser_core.data.normalization import MIN_SCALE, check_min_scale

CONDITIONING_MODES = ("none", "start", "start_goal")
NORMALIZERS = ("limits", "gaussian")
PADDING_MODES = ("none", "edge")
LOSS_TYPES = ("l2", "l1")
NORM_LAYERS = ("group", "none")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _positive_int(name: str, value: Any) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
             f"{name} must be a positive integer, got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    _require(value in choices, f"{name} must be one of {choices}, got {value!r}")


def from_dict(cls, data: Mapping[str, Any] | None):
    """Build the dataclass `cls` from a mapping, rejecting unknown keys by name."""
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; expected some of {sorted(known)}")
    return cls(**data)


def to_dict(config) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


@dataclass
class UnetConfig:
    """Temporal U-Net size: base channels `dim`, channel multiplier per resolution level."""

    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 4, 8)
    kernel_size: int = 5
    norm_groups: int = 8
    norm: str = "group"  # "group" = GroupNorm as in the paper; "none" = strictly local receptive field
    # also feed the plan's first state (held at the robot's state by inpainting) through an MLP into
    # every block's embedding, so all plan steps see it at once instead of through the receptive field
    start_embedding: bool = False

    def __post_init__(self):
        self.dim_mults = tuple(self.dim_mults)
        _positive_int("unet.dim", self.dim)
        _require(self.dim % 2 == 0 and self.dim >= 4, f"unet.dim must be even and >= 4, got {self.dim}")
        _require(len(self.dim_mults) >= 1, "unet.dim_mults must have at least one level")
        for mult in self.dim_mults:
            _positive_int("unet.dim_mults entries", mult)
        _positive_int("unet.kernel_size", self.kernel_size)
        _require(self.kernel_size % 2 == 1, f"unet.kernel_size must be odd, got {self.kernel_size}")
        _positive_int("unet.norm_groups", self.norm_groups)
        _choice("unet.norm", self.norm, NORM_LAYERS)
        _require(isinstance(self.start_embedding, bool),
                 f"unet.start_embedding must be true or false, got {self.start_embedding!r}")
        if self.norm == "group":
            for mult in self.dim_mults:
                _require((self.dim * mult) % self.norm_groups == 0,
                         f"unet channels dim*mult={self.dim * mult} not divisible by "
                         f"norm_groups={self.norm_groups}")

    @property
    def levels(self) -> int:
        return len(self.dim_mults)

    @property
    def horizon_multiple(self) -> int:
        """Every horizon must be a multiple of this (one halving per level below the top)."""
        return 2 ** (self.levels - 1)


@dataclass
class DiffusionConfig:
    """Gaussian diffusion over trajectories: schedule length, prediction target and loss."""

    n_timesteps: int = 64
    predict_epsilon: bool = False  # False: the network predicts the clean trajectory x0
    predict_v: bool = False  # the velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022)
    clip_denoised: bool = True
    loss_type: str = "l2"
    action_weight: float = 1.0  # extra loss weight on the first action (the one executed)
    loss_discount: float = 1.0  # loss weight discount**t over plan time steps
    dim_weights: tuple[float, ...] | None = None  # per transition dimension, actions first
    condition_on: str = "start"  # entries given clean during training: "none"|"start"|"start_goal"

    def __post_init__(self):
        if self.dim_weights is not None:
            self.dim_weights = tuple(float(w) for w in self.dim_weights)
            _require(all(w >= 0 for w in self.dim_weights), "diffusion.dim_weights must be >= 0")
        _positive_int("diffusion.n_timesteps", self.n_timesteps)
        _require(not (self.predict_epsilon and self.predict_v),
                 "diffusion.predict_epsilon and diffusion.predict_v are exclusive: pick one prediction target")
        _choice("diffusion.loss_type", self.loss_type, LOSS_TYPES)
        _choice("diffusion.condition_on", self.condition_on, CONDITIONING_MODES)
        _require(self.action_weight >= 0, f"diffusion.action_weight must be >= 0, got {self.action_weight}")
        _require(0 < self.loss_discount <= 1,
                 f"diffusion.loss_discount must be in (0, 1], got {self.loss_discount}")


@dataclass
class ValueConfig:
    """Value model J(tau_t, t) (a U-Net encoder) trained on discounted returns."""

    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    kernel_size: int = 5
    norm_groups: int = 8
    hidden_dim: int = 256
    discount: float = 0.99

    def __post_init__(self):
        self.dim_mults = tuple(self.dim_mults)
        UnetConfig(self.dim, self.dim_mults, self.kernel_size, self.norm_groups)  # same rules
        _positive_int("value.hidden_dim", self.hidden_dim)
        _require(0 < self.discount <= 1, f"value.discount must be in (0, 1], got {self.discount}")

    def encoder(self) -> UnetConfig:
        """The U-Net settings shared by the value model's encoder blocks."""
        return UnetConfig(self.dim, self.dim_mults, self.kernel_size, self.norm_groups)


@dataclass
class DatasetConfig:
    """How episodes become training windows."""

    horizon: int = 32
    stride: int = 1  # env steps between consecutive plan states (K > 1: a high-level, jumpy model)
    normalizer: str = "limits"
    padding: str = "none"  # "none": windows lie inside episodes; "edge": repeat the last state
    # smallest normalizer scale (robot units): a dimension that only jitters in the data (an
    # object's quaternion, ±0.001) stays that small instead of becoming unit-size noise to predict
    normalizer_min_scale: float = MIN_SCALE

    def __post_init__(self):
        _positive_int("dataset.horizon", self.horizon)
        _positive_int("dataset.stride", self.stride)
        _choice("dataset.normalizer", self.normalizer, NORMALIZERS)
        _choice("dataset.padding", self.padding, PADDING_MODES)
        check_min_scale(self.normalizer_min_scale, "dataset.normalizer_min_scale")


@dataclass
class TrainingConfig:
    """Optimiser, EMA, checkpoint cadence and determinism settings of the trainer."""

    steps: int = 10_000
    batch_size: int = 32
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    grad_accumulation: int = 1
    ema_decay: float = 0.995
    ema_start: int = 0  # before this step the EMA copies the weights
    ema_every: int = 1
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"  # "auto" = cuda if available, else cpu
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "grad_accumulation", "ema_every", "checkpoint_every",
                     "log_every"):
            _positive_int(f"training.{name}", getattr(self, name))
        _require(self.learning_rate > 0, f"training.learning_rate must be > 0, got {self.learning_rate}")
        _require(self.weight_decay >= 0, f"training.weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.grad_clip is None or self.grad_clip > 0,
                 f"training.grad_clip must be > 0 or null, got {self.grad_clip}")
        _require(0 <= self.ema_decay < 1, f"training.ema_decay must be in [0, 1), got {self.ema_decay}")
        _require(self.ema_start >= 0, f"training.ema_start must be >= 0, got {self.ema_start}")
        _require(self.num_workers >= 0, f"training.num_workers must be >= 0, got {self.num_workers}")
        _require(isinstance(self.seed, int), f"training.seed must be an integer, got {self.seed!r}")


@dataclass
class ShippedCheckpoint:
    """The checkpoint an experiment shipped (a path in the repository) and its training steps."""

    checkpoint: str = ""
    steps: int = 0


@dataclass
class ExperimentConfig:
    """One training run as read from a YAML/JSON file: sections model, diffusion, value, dataset,
    training, plus the environment name, the dataset loader (a task's name, a registered name or
    "module:function") and the checkpoint it shipped, if any."""

    env: str = ""
    loader: str = "hdf5"
    shipped: ShippedCheckpoint = field(default_factory=ShippedCheckpoint)
    model: UnetConfig = field(default_factory=UnetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        """Parse the nested mapping of an experiment file (missing sections take defaults)."""
        sections = {"model": UnetConfig, "diffusion": DiffusionConfig, "value": ValueConfig,
                    "dataset": DatasetConfig, "training": TrainingConfig, "shipped": ShippedCheckpoint}
        data = dict(data)
        parsed = {name: from_dict(kind, data.pop(name, None)) for name, kind in sections.items()}
        top = from_dict(_TopLevel, data)
        return cls(env=top.env, loader=top.loader, **parsed)

    @classmethod
    def from_file(cls, path: str | Path) -> "ExperimentConfig":
        """Read a .yaml/.yml/.json experiment file."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file not found: {path}")
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a mapping at the top level")
        return cls.from_dict(data)


@dataclass
class _TopLevel:
    env: str = ""
    loader: str = "hdf5"


def resolve_device(device: str = "auto"):
    """'auto' picks CUDA when a GPU is present, else the CPU; other names pass to torch.device."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from error
