"""Declare ROS parameters from a dataclass config, so each node's parameters, defaults and descriptions
live in one place that tests (and the bringup YAML check) can read without starting the node."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor

ConfigT = TypeVar("ConfigT")


def describe(default: Any, description: str) -> Any:
    """A dataclass field carrying its ROS parameter description; tuples become array parameters."""
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata={"description": description})
    return dataclasses.field(default=default, metadata={"description": description})


def parameter_defaults(config_cls: type) -> dict[str, Any]:
    """Parameter name -> default value of a config dataclass."""
    return {f.name: (f.default_factory() if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(config_cls)}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Accept YAML/CLI ints where floats are expected (``1`` for ``1.0``); refuse anything else."""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ValueError(f"parameter {name!r} must be a list of {len(default)} numbers, got {value!r}")
        return tuple(_coerce(name, v, d) for v, d in zip(value, default))
    if isinstance(default, bool) or isinstance(default, str):
        if type(value) is not type(default):
            raise ValueError(f"parameter {name!r} must be a {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(default)(value)
    raise ValueError(f"parameter {name!r} must be a {type(default).__name__}, got {value!r}")


def declare_config(node, config_cls: type[ConfigT]) -> ConfigT:
    """Declare one parameter per dataclass field (with its description) and build the config from the
    values the node was started with; raise ValueError naming the parameter when a value has the wrong type."""
    values = {}
    for f in dataclasses.fields(config_cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        declared = list(default) if isinstance(default, tuple) else default
        descriptor = ParameterDescriptor(description=f.metadata.get("description", ""), dynamic_typing=True)
        value = node.declare_parameter(f.name, declared, descriptor).value
        values[f.name] = _coerce(f.name, value, default)
    return config_cls(**values)
