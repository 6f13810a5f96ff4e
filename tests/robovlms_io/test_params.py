"""The one parameter style: declared once with default, description and rules; a node receives typed, validated
values (strings stay strings, digits included), or a ValueError naming the parameter; the README table comes
from the same declaration."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from robovlms_io.params import declare_params, param, parameter_defaults, parameter_table

pytestmark = pytest.mark.ros


@dataclass(frozen=True)
class Example:
    serial: str = param("", "A serial number.")
    rate: float = param(10.0, "Hz.", positive=True, high=100.0)
    count: int = param(3, "How many.", low=1)
    mode: str = param("a", "Mode.", choices=("a", "b"))
    enabled: bool = param(True, "On or off.")
    box: tuple = param((0.0, 1.0, 2.0), "Three numbers.")
    topics: tuple = param(("/x", "/y"), "Any number of topics.")
    factor: float = param(2.0, "Above one.", check=(lambda v: v > 1.0, "> 1"))


def declared(ros_context, **overrides):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node("params_probe", context=ros_context,
                parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    try:
        return declare_params(node, Example), {p: node.describe_parameter(p).description
                                               for p in parameter_defaults(Example)}
    finally:
        node.destroy_node()


def test_defaults_and_descriptions_reach_the_node(ros_context):
    values, descriptions = declared(ros_context)
    assert values == Example()
    assert descriptions == {f.name: f.metadata["description"] for f in dataclasses.fields(Example)}


def test_values_are_typed_like_their_defaults(ros_context):
    values, _ = declared(ros_context, serial="000489192412", rate=20, box=[1, 2, 3], topics=["/a"])
    assert values.serial == "000489192412" and values.rate == 20.0 and isinstance(values.rate, float)
    assert values.box == (1.0, 2.0, 3.0) and values.topics == ("/a",)


@pytest.mark.parametrize("override, message", [
    ({"serial": 489192412}, "parameter 'serial' must be a str"),
    ({"rate": 0.0}, "parameter 'rate' must be > 0"),
    ({"rate": 500.0}, "parameter 'rate' must be <= 100"),
    ({"rate": float("nan")}, "parameter 'rate' must be finite"),
    ({"count": 0}, "parameter 'count' must be >= 1"),
    ({"count": 2.5}, "parameter 'count' must be a int"),
    ({"mode": "c"}, "parameter 'mode' must be one of ['a', 'b']"),
    ({"enabled": 1}, "parameter 'enabled' must be a bool"),
    ({"box": [1.0, 2.0]}, "parameter 'box' must have 3 values"),
    ({"factor": 0.5}, "parameter 'factor' must be > 1"),
])
def test_bad_values_name_the_parameter(ros_context, override, message):
    with pytest.raises(ValueError) as error:
        declared(ros_context, **override)
    assert message in str(error.value)


def test_table_lists_every_parameter_with_its_rules():
    table = parameter_table(Example).splitlines()
    assert len(table) == 2 + len(dataclasses.fields(Example))
    assert "| `rate` | 10.0 | Hz. (> 0; <= 100) |" in table
    assert "| `mode` | a | Mode. (one of `a`, `b`) |" in table
    assert "| `serial` | \"\" | A serial number. |" in table
    assert "| `topics` | [/x, /y] | Any number of topics. |" in table
    assert "| `factor` | 2.0 | Above one. (> 1) |" in table
