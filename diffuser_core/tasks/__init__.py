"""Tasks: what a robot setting brings to the method (Diffuser knows nothing of mazes or arms).

A task package (`diffuser_core.tasks.<name>`) exposes `TASK`, a `Task`: its dataset loader (the
`loader:` an experiment names), an env factory, its evaluation and the paper's numbers for it.
Importing a task package loads no simulator; its env and evaluation import theirs when called.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from diffuser_core.data.datasets import EpisodeLoader, resolve_loader as resolve_registered_loader

TASK_PACKAGES = {"maze2d": "diffuser_core.tasks.maze2d", "kuka": "diffuser_core.tasks.kuka"}


@dataclass(frozen=True)
class Task:
    """load_episodes(path) -> episodes; make_env(**settings) -> env; evaluate(checkpoint, config)
    -> summary with the task's score; eval_config(**fields): a config for evaluate; paper_scores: the paper's
    (mean, standard error) per setting."""

    name: str
    load_episodes: EpisodeLoader
    make_env: Callable[..., Any]
    evaluate: Callable[..., Any]
    eval_config: Callable[..., Any]
    paper_scores: Mapping


def get_task(name: str) -> Task:
    """The task called `name` ('maze2d', 'kuka'), with a clear error for others."""
    if name not in TASK_PACKAGES:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASK_PACKAGES)}")
    return importlib.import_module(TASK_PACKAGES[name]).TASK


def resolve_loader(spec: str) -> EpisodeLoader:
    """A task's dataset loader by the task's name, else a registered loader or "module:function"."""
    if spec in TASK_PACKAGES:
        return get_task(spec).load_episodes
    return resolve_registered_loader(spec)
