"""One process hosting a simulated graph and the operator that drives it only over DDS (services, topics):
the nodes on one executor thread, the operator's service clients with timeouts. Used by `make demo` and the
CALVIN evaluation."""
from __future__ import annotations

import threading
import time

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
