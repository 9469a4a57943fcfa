"""Settings that describe themselves: each is a dataclass field with its default, a one-line
meaning, an inclusive range or a set of choices, and whether a running node may change it.

This is the one table of a parameter: the core checks values against it when a settings object is
made, and the ROS nodes declare their parameters (descriptions, ranges) from it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class Meaning:
    """What a setting means, its inclusive range (None: unbounded) or its choices, whether it takes
    effect while a node runs (live) and whether it can never change (read_only)."""

    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    live: bool = False
    read_only: bool = False


def setting(default, description: str, minimum: float | None = None, maximum: float | None = None, *,
            choices: tuple[str, ...] | None = None, live: bool = False, read_only: bool = False):
    """A dataclass field with its Meaning attached."""
    meaning = Meaning(description, minimum, maximum, choices, live, read_only)
    return field(default=default, metadata={"meaning": meaning})


def meanings(cls) -> dict[str, tuple[Any, Meaning]]:
    """name -> (default, Meaning) of every described field of a settings class."""
    return {f.name: (f.default, f.metadata["meaning"]) for f in fields(cls)
            if "meaning" in f.metadata and f.default is not MISSING}


def defaults(cls) -> dict[str, Any]:
    """name -> default of every described field of a settings class."""
    return {name: default for name, (default, _) in meanings(cls).items()}


def from_parameters(cls, parameters: Mapping[str, Any], **others):
    """A settings object from a parameter mapping (a node's, or a scenario's ros__parameters): the
    described fields it holds, the class defaults for the rest, `others` on top."""
    values = {name: parameters[name] for name in meanings(cls) if name in parameters}
    return cls(**values, **others)


def check_settings(settings) -> None:
    """ValueError naming the first described field whose value has the wrong type, lies outside
    its range or is not one of its choices. Integers given for float fields become floats."""
    for f in fields(settings):
        meaning = f.metadata.get("meaning")
        if meaning is None:
            continue
        value = _typed(f.name, getattr(settings, f.name), f.default)
        object.__setattr__(settings, f.name, value)
        if meaning.choices is not None and value not in meaning.choices:
            raise ValueError(f"{f.name}={value!r} is not one of {list(meaning.choices)}")
        low, high = meaning.minimum, meaning.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
            raise ValueError(f"{f.name} must be in {bounds} ({meaning.description}), got {value!r}")


def _typed(name: str, value, default):
    """`value` as the type of `default` (bool, int, float or str), or ValueError."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if isinstance(default, tuple):
        return _typed_list(name, value, default)
    return value


def _typed_list(name: str, value, default: tuple) -> tuple:
    """`value` as a tuple of the default's element type (str or float), or ValueError."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a list, got {value!r}")
    items = tuple(value)
    if default and isinstance(default[0], str):
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"{name} must be a list of strings, got {list(items)!r}")
        return items
    if not all(isinstance(item, numbers.Real) and not isinstance(item, bool) and math.isfinite(item) for item in items):
        raise ValueError(f"{name} must be a list of finite numbers, got {list(items)!r}")
    return tuple(float(item) for item in items)
