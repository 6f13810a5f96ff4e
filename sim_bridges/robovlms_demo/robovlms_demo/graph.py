"""One process hosting a simulated graph and the operator that drives it only over DDS (services, topics):
the nodes on one executor thread, the operator's service clients with timeouts. Used by `make demo` and the
CALVIN evaluation."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Sequence

import rclpy
from ament_index_python.packages import get_package_share_directory
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from robovlms_io import names, qos
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import LabelTrial, ResetEpisode, StartTrial, StopTrial

SERVICE_TIMEOUT_S = 15.0
# The operator's services: the sim's reset and the trial recorder's.
TRIAL_SERVICES = {names.RESET_EPISODE_SERVICE: ResetEpisode, "trial/start": StartTrial, "trial/stop": StopTrial,
                  "trial/label": LabelTrial}


def bringup_context(config_files: Sequence[str]) -> rclpy.Context:
    """An initialised rclpy context whose nodes read robovlms_bringup's parameter files, in order (as the
    launch files give them), so a one-process graph is configured like the launched one."""
    config_dir = Path(get_package_share_directory("robovlms_bringup")) / "config"
    context = rclpy.Context()
    rclpy.init(args=["--ros-args"] + [arg for name in config_files for arg in ("--params-file", str(config_dir / name))],
               context=context)
    return context


def assert_domain_is_free(context, wait_s: float = 3.0) -> None:
    """Refuse to start next to another graph (a second demo, a real cell) on the same DDS domain: their
    services and topics would mix into this run's trials."""
    probe = Node("graph_probe", context=context)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            served = {name for name, _ in probe.get_service_names_and_types()}
            clash = sorted(served & {"/trial/start", "/" + names.RESET_EPISODE_SERVICE})
            if clash:
                raise RuntimeError(f"{', '.join(clash)} already served on ROS_DOMAIN_ID "
                                   f"{os.environ.get('ROS_DOMAIN_ID', '0')}: another graph is running there; "
                                   "stop it or run this one with another ROS_DOMAIN_ID")
            time.sleep(0.1)
    finally:
        probe.destroy_node()


def policy_node(context, checkpoint: str, execution_strategy: str) -> Node:
    """The policy node on ``checkpoint`` (imported here, so torch loads only when a model is used)."""
    from robovlms_policy.node.policy_node import PolicyNode
    return PolicyNode(context=context, parameter_overrides=[
        Parameter("checkpoint", value=checkpoint), Parameter("execution_strategy", value=execution_strategy)])


class OperatorGraph:
    """``nodes`` plus an operator node with clients for ``services`` (name -> type) and the latest
    episode_info. ``close`` destroys everything, in reverse order."""

    def __init__(self, context, nodes: list[Node], services: dict[str, type]) -> None:
        self.nodes = nodes
        self.operator = Node("operator", context=context)
        self.latest_info: EpisodeInfo | None = None
        self.operator.create_subscription(EpisodeInfo, names.EPISODE_INFO_TOPIC, self._on_info, qos.RELIABLE)
        self.clients = {name: self.operator.create_client(kind, name) for name, kind in services.items()}
        # One executor thread: rclpy's MultiThreadedExecutor busy-waits when callbacks are blocked by their
        # group, which measurably starved physics, rendering and inference here.
        self.executor = SingleThreadedExecutor(context=context)
        for node in self.nodes + [self.operator]:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, name="graph-executor", daemon=True)

    def _on_info(self, msg: EpisodeInfo) -> None:
        self.latest_info = msg

    def start(self) -> None:
        self._thread.start()
        for name, client in self.clients.items():
            if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
                raise RuntimeError(f"service {name} did not come up within {SERVICE_TIMEOUT_S:.0f} s")

    def call(self, name: str, request):
        future = self.clients[name].call_async(request)
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {name} did not answer within {SERVICE_TIMEOUT_S:.0f} s")
            time.sleep(0.01)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10)
        for node in reversed(self.nodes + [self.operator]):
            node.destroy_node()
