"""Node parameters declared once: each is a field of a frozen dataclass with its default, description and
validation (the generate_parameter_library idea, in Python). The node declares and validates them with
``declare_params``; the README tables (``parameter_table``) and the bringup YAML checks read the same class.

Types follow the default: a str parameter stays a str (digits included), a bool a bool, an int an int; a float
parameter also takes an integer ("1" for "1.0"), and a tuple default makes an array parameter.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, TypeVar

from rcl_interfaces.msg import ParameterDescriptor

ParamsT = TypeVar("ParamsT")
Check = tuple[Callable[[Any], bool], str]  # predicate on the value, and what it must be when it fails


def param(default: Any, description: str, *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None, positive: bool = False, length: int | None = None,
          check: Check | None = None) -> Any:
    """A parameter field. ``choices``: allowed values; ``low`` / ``high``: inclusive bounds; ``positive``: > 0;
    ``length``: exact array length (numeric arrays default to their default's length); ``check``: a custom rule."""
    if isinstance(default, list):
        default = tuple(default)
    if isinstance(default, tuple) and length is None and all(isinstance(v, (int, float)) for v in default):
        length = len(default)
    rules = {"description": description, "choices": choices, "low": low, "high": high, "positive": positive,
             "length": length, "check": check}
    if isinstance(default, tuple):
        return dataclasses.field(default_factory=lambda: default, metadata=rules)
    return dataclasses.field(default=default, metadata=rules)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def parameter_defaults(params_cls: type) -> dict[str, Any]:
    """Parameter name -> default value."""
    return {f.name: _default(f) for f in dataclasses.fields(params_cls)}


def _typed(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"parameter '{name}' must be a list, got {value!r}")
        element = default[0] if default else value[0] if value else ""
        return tuple(_typed(name, v, element) for v in value)
    if isinstance(default, bool) or isinstance(default, str):
        if type(value) is not type(default):
            raise ValueError(f"parameter '{name}' must be a {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"parameter '{name}' must be a {type(default).__name__}, got {value!r}")


def validate_value(f: dataclasses.Field, value: Any) -> Any:
    """The value typed like the default and checked against the field's rules; ValueError naming the field."""
    name, rules = f.name, f.metadata
    value = _typed(name, value, _default(f))
    items = value if isinstance(value, tuple) else (value,)
    if rules.get("length") is not None and len(value) != rules["length"]:
        raise ValueError(f"parameter '{name}' must have {rules['length']} values, got {list(value)}")
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"parameter '{name}' must be finite, got {value!r}")
        if rules.get("choices") is not None and item not in rules["choices"]:
            raise ValueError(f"parameter '{name}' must be one of {list(rules['choices'])}, got {item!r}")
        if rules.get("positive") and not item > 0:
            raise ValueError(f"parameter '{name}' must be > 0, got {item!r}")
        if rules.get("low") is not None and item < rules["low"]:
            raise ValueError(f"parameter '{name}' must be >= {rules['low']}, got {item!r}")
        if rules.get("high") is not None and item > rules["high"]:
            raise ValueError(f"parameter '{name}' must be <= {rules['high']}, got {item!r}")
    if rules.get("check") is not None:
        predicate, requirement = rules["check"]
        if not predicate(value):
            raise ValueError(f"parameter '{name}' must be {requirement}, got {value!r}")
    return value


def declare_params(node, params_cls: type[ParamsT]) -> ParamsT:
    """Declare every field as a ROS parameter (with its description) and return the validated values the
    node was started with; ValueError names the first parameter that is wrong."""
    values = {}
    for f in dataclasses.fields(params_cls):
        default = _default(f)
        descriptor = ParameterDescriptor(description=f.metadata.get("description", ""), dynamic_typing=True)
        declared = node.declare_parameter(f.name, list(default) if isinstance(default, tuple) else default,
                                          descriptor).value
        values[f.name] = validate_value(f, declared)
    return params_cls(**values)


def parameter_table(params_cls: type) -> str:
    """Markdown table of a parameter class: name, default, description and rules."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(params_cls):
        default = _default(f)
        text = f"[{', '.join(str(v) for v in default)}]" if isinstance(default, tuple) else str(default)
        text = '""' if text == "" else text.replace("|", "\\|")
        rules = f.metadata
        extra = [rules["check"][1]] if rules.get("check") else []
        if rules.get("choices"):
            extra.append("one of " + ", ".join(f"`{c}`" for c in rules["choices"]))
        if rules.get("positive"):
            extra.append("> 0")
        if rules.get("low") is not None:
            extra.append(f">= {rules['low']:g}")
        if rules.get("high") is not None:
            extra.append(f"<= {rules['high']:g}")
        description = rules.get("description", "") + (f" ({'; '.join(extra)})" if extra else "")
        rows.append(f"| `{f.name}` | {text} | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)
