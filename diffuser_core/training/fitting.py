"""Fitting a small model by Adam, one batch loss per step, the running mean of the loss printed now
and then: the loop the learned helpers beside the diffusion model share (a relation classifier, a
reachability classifier)."""
from __future__ import annotations

import time
from typing import Callable, Iterable

import torch


def fit_by_steps(parameters: Iterable[torch.Tensor], batch_loss: Callable[[], torch.Tensor], steps: int,
                 learning_rate: float, log_every: int = 0, name: str = "loss") -> None:
    """`steps` Adam steps on `batch_loss()` (a fresh batch each call); every `log_every` steps (0: never)
    print the mean `name` since the last print and the seconds so far."""
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    started, running = time.monotonic(), 0.0
    for step in range(1, steps + 1):
        loss = batch_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
        if log_every and step % log_every == 0:
            print(f"step {step}: {name} {running / log_every:.4f} ({time.monotonic() - started:.0f} s)", flush=True)
            running = 0.0
