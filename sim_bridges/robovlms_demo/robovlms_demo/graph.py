"""Building blocks of a one-process simulated graph: an rclpy context configured by the bringup's parameter
files, and the policy node. Used by `make demo` and the CALVIN evaluation; the operator side is
robovlms_policy.trials.operator."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import rclpy
from ament_index_python.packages import get_package_share_directory
from rclpy.node import Node
from rclpy.parameter import Parameter


def bringup_context(config_files: Sequence[str]) -> rclpy.Context:
    """An initialised rclpy context whose nodes read robovlms_bringup's parameter files, in order (as the
    launch files give them), so a one-process graph is configured like the launched one."""
    config_dir = Path(get_package_share_directory("robovlms_bringup")) / "config"
    context = rclpy.Context()
    rclpy.init(args=["--ros-args"] + [arg for name in config_files for arg in ("--params-file", str(config_dir / name))],
               context=context)
    return context


def policy_node(context, checkpoint: str, execution_strategy: str, overrides: Sequence[Parameter] = ()) -> Node:
    """The policy node on ``checkpoint`` (imported here, so torch loads only when a model is used)."""
    from robovlms_policy.node.policy_node import PolicyNode
    return PolicyNode(context=context, parameter_overrides=[
        Parameter("checkpoint", value=checkpoint), Parameter("execution_strategy", value=execution_strategy),
        *overrides])
