"""Training loop: AdamW, gradient clipping, EMA, periodic checkpoints, exact resume, and
multi-GPU data parallelism when launched by torchrun.

The trainer is generic: `objective(**batch, generator=...)` must return a scalar loss
(GaussianDiffusion and ValueObjective both do). Under torchrun (WORLD_SIZE > 1) it joins the
process group (nccl on CUDA, gloo on CPU), wraps the objective in DistributedDataParallel, shards
batches with DistributedSampler, and only rank 0 writes checkpoints and logs.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from diffuser_core.checkpoint import (
    CheckpointConfig,
    CheckpointError,
    TrainingState,
    load_training_state,
    load_weights,
    save_checkpoint,
)
from diffuser_core.config import TrainingConfig, resolve_device
from diffuser_core.data.normalization import TrajectoryNormalizer
from diffuser_core.training.ema import EMA

LATEST = "latest.safetensors"


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) training job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Read torchrun's WORLD_SIZE / RANK / LOCAL_RANK and join the process group if > 1 process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device)
    if target.type == "cuda" and world_size > 1:
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return DistributedContext(rank, local_rank, world_size, target)


def cleanup_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


class Trainer:
    """Optimises `objective` on `dataset`, keeps an EMA copy, writes checkpoints to `out_dir`."""

    def __init__(self, objective: nn.Module, dataset: Dataset, config: TrainingConfig,
                 checkpoint_config: CheckpointConfig, normalizer: TrajectoryNormalizer,
                 out_dir: str | Path, context: DistributedContext | None = None):
        self.config, self.dataset, self.normalizer = config, dataset, normalizer
        self.checkpoint_config, self.out_dir = checkpoint_config, Path(out_dir)
        self.context = context or setup_distributed(config.device)
        device = self.context.device
        self.objective = objective.to(device)
        self.model = (DistributedDataParallel(self.objective, device_ids=[device] if device.type == "cuda"
                                              else None) if self.context.is_distributed else self.objective)
        # after DDP has broadcast rank 0's weights, so every rank averages the same start
        self.ema = EMA(self.objective, config.ema_decay, config.ema_start, config.ema_every)
        self.optimizer = torch.optim.AdamW(self.objective.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.generator = torch.Generator(device).manual_seed(config.seed + self.context.rank)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._check_dataset_size()

    def _check_dataset_size(self) -> None:
        needed = self.config.batch_size * self.context.world_size
        if len(self.dataset) < needed:
            raise ValueError(f"dataset has {len(self.dataset)} windows, fewer than batch_size x "
                             f"processes = {needed}")

    def resume(self, path: str | Path) -> None:
        """Continue from a training checkpoint: weights, EMA, optimizer, RNG and step."""
        state, ema_state, config = load_training_state(path, self.context.device)
        if config.kind != self.checkpoint_config.kind:
            raise CheckpointError(f"{path} holds a {config.kind!r} model, this trainer trains "
                                  f"{self.checkpoint_config.kind!r}")
        load_weights(self.objective, state.model, path)
        load_weights(self.ema.model, ema_state, path)
        try:
            self.optimizer.load_state_dict(state.optimizer)
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"optimizer state in {path} does not match: {error}") from error
        self.generator.set_state(state.generator)
        self.step = config.step

    def train(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run until `steps` (default config.steps) optimizer steps; returns the logged losses."""
        total = self.config.steps if steps is None else steps
        show = self.config.progress and self.context.is_main
        batches = self._batches()
        running, count = torch.zeros((), device=self.context.device), 0
        with tqdm(total=total, initial=self.step, disable=not show, desc="train") as progress:
            while self.step < total:
                running += self._optimizer_step(batches)
                count += 1
                progress.update(1)
                if self.step % self.config.log_every == 0 or self.step == total:
                    self._log(float(running) / count, progress)
                    running, count = torch.zeros_like(running), 0
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self.save()
        return self.history

    def _optimizer_step(self, batches: Iterator[dict[str, torch.Tensor]]) -> torch.Tensor:
        self.model.train()
        total = torch.zeros((), device=self.context.device)
        for _ in range(self.config.grad_accumulation):
            batch = {k: v.to(self.context.device, non_blocking=True) for k, v in next(batches).items()}
            loss = self.model(**batch, generator=self.generator) / self.config.grad_accumulation
            loss.backward()
            total += loss.detach()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.objective.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.ema.update(self.objective, self.step)
        return total

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches; the order depends only on (seed, step), so a resume continues it."""
        sampler = DistributedSampler(self.dataset, num_replicas=self.context.world_size,
                                     rank=self.context.rank, shuffle=True, seed=self.config.seed,
                                     drop_last=True)
        per_epoch = len(sampler) // self.config.batch_size
        epoch, offset = divmod(self.step * self.config.grad_accumulation, per_epoch)
        while True:
            sampler.set_epoch(epoch)
            batches = list(BatchSampler(sampler, self.config.batch_size, drop_last=True))[offset:]
            yield from DataLoader(self.dataset, batch_sampler=batches, num_workers=self.config.num_workers,
                                  pin_memory=self.context.device.type == "cuda")
            epoch, offset = epoch + 1, 0

    def _log(self, loss: float, progress) -> None:
        record = {"step": self.step, "loss": loss}
        self.history.append(record)
        progress.set_postfix(loss=f"{loss:.4g}")
        if self.context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "metrics.jsonl", "a") as file:
                file.write(json.dumps(record) + "\n")

    def save(self) -> Path | None:
        """Write step_<step>.safetensors and latest.safetensors (rank 0 only); returns the path."""
        if not self.context.is_main:
            return None
        config = replace(self.checkpoint_config, step=self.step)
        state = TrainingState(self.objective.state_dict(), self.optimizer.state_dict(),
                              self.generator.get_state())
        path = save_checkpoint(self.out_dir / f"step_{self.step:07d}.safetensors", self.ema.model,
                               self.normalizer, config, state)
        shutil.copyfile(path, self.out_dir / LATEST)
        return path
