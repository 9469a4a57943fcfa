"""Offline datasets in D4RL's hdf5 layout: write, load (with checks), split into episodes.

Layout (D4RL): one flat stream of N steps; datasets `observations` (N, obs), `actions` (N, act),
`rewards` (N,), `terminals` (N,) and optionally `timeouts` (N,) and `infos/*` (N, ...);
`metadata/*` entries may be scalars. An episode ends at a step whose terminal or timeout is set.
Tasks may segment differently (each task's `episodes` module).
"""
import os
from pathlib import Path

import h5py
import numpy as np

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
END_FLAG_KEYS = ("terminals", "timeouts")
METADATA_PREFIX = "metadata"


class DatasetError(ValueError):
    """A dataset file or dict that is missing, unreadable or malformed."""


# -------------------------------------------------------------------------------- checks
def check_d4rl_data(data: dict, source: str = "dataset") -> int:
    """Raise DatasetError unless `data` is a valid D4RL stream; returns its length N."""
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise DatasetError(f"{source}: missing keys {missing} (has {sorted(data)})")
    length = len(data["observations"])
    for key, array in _per_step_items(data):
        if len(array) != length:
            raise DatasetError(
                f"{source}: {key!r} has {len(array)} rows, observations has {length}")
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            row = int(np.argwhere(~np.isfinite(array))[0][0])
            raise DatasetError(f"{source}: {key!r} has a non-finite value at step {row}")
    for key in ("observations", "actions"):
        if data[key].ndim != 2:
            raise DatasetError(f"{source}: {key!r} must be 2-D (N, dim), got {data[key].shape}")
    return length


def _per_step_items(data: dict):
    return [(key, np.asarray(value)) for key, value in data.items()
            if not key.startswith(METADATA_PREFIX) and np.ndim(value) > 0]


# ------------------------------------------------------------------------------- hdf5 I/O
def write_d4rl_hdf5(path, data: dict, attrs: dict = None, compression: str = "gzip") -> Path:
    """Check `data` and write it as D4RL hdf5 ('infos/goal' becomes group infos, dataset goal)."""
    check_d4rl_data(data, source=str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as file:
        for key, value in data.items():
            array = np.asarray(value)
            file.create_dataset(key, data=array, compression=compression if array.ndim else None)
        file.attrs.update(attrs or {})
    os.replace(partial, path)  # readers never see a half-written file
    return path


def load_d4rl_hdf5(path) -> dict:
    """Read every dataset of a D4RL hdf5 file into numpy arrays, checked by check_d4rl_data."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        with h5py.File(path, "r") as file:
            data = _read_all(file)
    except OSError as error:
        raise DatasetError(f"{path}: not a readable hdf5 file ({error})") from error
    for key in ("rewards", "terminals", "timeouts"):
        if key in data and data[key].ndim == 2 and data[key].shape[1] == 1:
            data[key] = data[key][:, 0]  # some D4RL files store (N, 1)
    check_d4rl_data(data, source=str(path))
    return data


def read_hdf5_attrs(path) -> dict:
    """The file-level attributes (e.g. the settings and seed a data generator wrote)."""
    try:
        with h5py.File(path, "r") as file:
            return {key: _plain(value) for key, value in file.attrs.items()}
    except OSError as error:
        raise DatasetError(f"{path}: not a readable hdf5 file ({error})") from error


def _read_all(file: h5py.File) -> dict:
    data = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            data[name] = item[()]

    file.visititems(visit)
    return data


def _plain(value):
    return value.decode() if isinstance(value, bytes) else (
        value.item() if isinstance(value, np.generic) else value)


# ------------------------------------------------------------------------------- episodes
def episode_ends(data: dict) -> np.ndarray:
    """Boolean (N,): True at the last step of each episode (terminal or timeout set)."""
    length = len(data["observations"])
    ends = np.zeros(length, dtype=bool)
    for key in END_FLAG_KEYS:
        if key in data:
            ends |= np.asarray(data[key]).reshape(length).astype(bool)
    return ends


def split_episodes(data: dict, ends: np.ndarray = None, keep_incomplete: bool = False) -> list:
    """Cut the stream after every True in `ends` (default: episode_ends); one dict per episode.

    Each episode holds every per-step key (observations (T, obs), actions (T, act), rewards
    (T,), ...) as views into `data`. The tail after the last end is dropped, as D4RL's
    sequence_dataset does, unless keep_incomplete.
    """
    length = check_d4rl_data(data)
    ends = episode_ends(data) if ends is None else np.asarray(ends, dtype=bool)
    if ends.shape != (length,):
        raise DatasetError(f"ends must have shape ({length},), got {ends.shape}")
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops])
    if keep_incomplete and (len(stops) == 0 or stops[-1] < length):
        stops = np.append(stops, length)
    items = _per_step_items(data)
    return [{key: array[start:stop] for key, array in items}
            for start, stop in zip(starts, stops) if stop > start]
