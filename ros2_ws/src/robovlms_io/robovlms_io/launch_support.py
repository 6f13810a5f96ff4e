"""What the launch files compute from their arguments, kept here (no `launch` import) so it is tested without
the launch machinery, which is not on PyPI.

String parameters that look like numbers (camera serials such as ``000489192412``, digit-only passwords, a
checkpoint directory named ``2024``) must reach the node as the string the user typed. launch_ros writes
parameter dictionaries to a YAML file unquoted, where ROS's YAML parser reads ``000489192412`` as the number
489192412.0; ``string_parameters_file`` writes them quoted instead.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

BOOLEAN_CHOICES = ("true", "false")


def string_parameters_file(node_name: str, parameters: dict[str, str], directory: str | None = None) -> str:
    """A parameter file for ``node_name`` whose values are all strings, double-quoted (JSON string syntax is
    valid YAML), so that no value is retyped; returns its path."""
    lines = [f"/**/{node_name}:", "  ros__parameters:"]
    for name, value in parameters.items():
        if not isinstance(value, str):
            raise TypeError(f"parameter {name!r} must be given as a string, got {type(value).__name__}")
        lines.append(f"    {name}: {json.dumps(value)}")
    handle = tempfile.NamedTemporaryFile("w", prefix=f"{node_name}_strings_", suffix=".yaml", dir=directory,
                                         delete=False)
    with handle:
        handle.write("\n".join(lines) + "\n")
    return handle.name


def checkpoint_problem(path: str) -> str:
    """Why ``path`` cannot be a policy checkpoint directory ("" when it can), checked before anything starts."""
    if not path:
        return "no checkpoint given: pass checkpoint:=/path/to/checkpoint"
    directory = Path(path).expanduser()
    if not directory.is_dir():
        return f"checkpoint {path} is not a directory"
    missing = [name for name in ("config.json", "model.safetensors", "tokenizer.json")
               if not (directory / name).is_file()]
    if missing:
        return f"checkpoint {path} lacks {', '.join(missing)}"
    return ""
