"""Node parameters declared up front with descriptors, as nav2 does: a description, a numeric range,
read-only where the value can never change, and an on-set check.

A node's parameters are the described fields of settings dataclasses (diffuser_core.settings): the
core's (PlanningSettings, LoopSettings, ...) and the node's own. `parameter_table(...)` gives the
defaults (name -> default) and the meanings (name -> Info); `declare(node, ...)` declares them all;
`ParameterGuard` refuses a new value with a reason when it is invalid, or when it cannot change in
the node's current state ("live" parameters take effect at once while the node runs; the others
are read at configure).
"""
from __future__ import annotations

from typing import Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult

from diffuser_core.settings import Meaning as Info
from diffuser_core.settings import meanings


def parameter_table(*settings_classes) -> tuple[dict, dict[str, Info]]:
    """(name -> default, name -> Info) of every described field of the settings classes."""
    defaults, infos = {}, {}
    for cls in settings_classes:
        for name, (default, meaning) in meanings(cls).items():
            if name in defaults:
                raise ValueError(f"parameter {name} is described twice ({cls.__name__})")
            defaults[name], infos[name] = default, meaning
    return defaults, infos


INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e300


def descriptor(name: str, default, info: Info) -> ParameterDescriptor:
    """The ROS descriptor of one parameter (its range typed like its default)."""
    when = "fixed" if info.read_only else "takes effect at once" if info.live else "read at configure"
    constraints = f"one of {' | '.join(info.choices)}; {when}" if info.choices else when
    result = ParameterDescriptor(name=name, description=info.description, read_only=info.read_only,
                                 additional_constraints=constraints)
    bounded = info.minimum is not None or info.maximum is not None
    if bounded and isinstance(default, bool):
        raise ValueError(f"parameter {name}: a bool has no range")
    if bounded and isinstance(default, int):
        result.integer_range = [IntegerRange(from_value=int(info.minimum if info.minimum is not None else -INT_LIMIT),
                                             to_value=int(info.maximum if info.maximum is not None else INT_LIMIT),
                                             step=0)]
    elif bounded and isinstance(default, float):
        result.floating_point_range = [FloatingPointRange(
            from_value=float(info.minimum if info.minimum is not None else -FLOAT_LIMIT),
            to_value=float(info.maximum if info.maximum is not None else FLOAT_LIMIT), step=0.0)]
    return result


def declare(node, defaults: dict, info: dict[str, Info]) -> None:
    """Declare every parameter of `defaults` with its descriptor from `info`."""
    missing = sorted(set(defaults) - set(info))
    if missing:
        raise ValueError(f"parameters without a description: {missing}")
    from rclpy.exceptions import InvalidParameterValueException

    for name, default in defaults.items():
        try:
            node.declare_parameter(name, default, descriptor(name, default, info[name]))
        except InvalidParameterValueException as error:
            low, high = info[name].minimum, info[name].maximum
            raise ValueError(f"{name} must be in [{low}, {high}] ({info[name].description}): {error}") from error


class ParameterGuard:
    """An on-set callback, made after `declare()`: `check(values)` validates the would-be parameter
    set (raises ValueError naming the parameter); `configured()` says whether non-live parameters
    are fixed now; `apply(values)` is called after a change was accepted."""

    def __init__(self, node, info: dict[str, Info], check: Callable[[dict], None],
                 configured: Callable[[], bool], apply: Callable[[dict], None]):
        self.node, self.info, self.check, self.configured, self.apply = node, info, check, configured, apply
        node.add_on_set_parameters_callback(self.on_set)
        node.add_post_set_parameters_callback(self.after_set)

    def on_set(self, parameters) -> SetParametersResult:
        """Refuse a change that is invalid, or to a parameter fixed while the node is configured."""
        changes = {p.name: p.value for p in parameters if p.name in self.info}
        if not changes:
            return SetParametersResult(successful=True)
        fixed = sorted(name for name in changes if not self.info[name].live)
        if fixed and self.configured():
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(fixed)} cannot change while the node is configured: deactivate and clean "
                f"it up, set the value, then configure again"))
        values = {**self.current(), **changes}
        try:
            self.check(values)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def after_set(self, parameters) -> None:
        """Hand accepted live values to the node."""
        if any(p.name in self.info for p in parameters):
            self.apply(self.current())

    def current(self) -> dict:
        return {name: self.node.get_parameter(name).value for name in self.info}
