"""The operator side of a graph: a node with service clients (with timeouts) and the latest episode_info,
spinning the graph's in-process nodes on one executor thread; used by the trial manager, `make demo` and the
CALVIN evaluation. And the check that no other graph shares the DDS domain."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from robovlms_io import names, qos
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import LabelTrial, ResetEpisode, StartTrial, StopTrial

SERVICE_TIMEOUT_S = 15.0
# The operator's services: the sim's reset and the trial recorder's.
TRIAL_SERVICES = {names.RESET_EPISODE_SERVICE: ResetEpisode, "trial/start": StartTrial, "trial/stop": StopTrial,
                  "trial/label": LabelTrial}


def assert_domain_is_free(context, wait_s: float = 3.0,
                          services: Sequence[str] = ("/trial/start", "/" + names.RESET_EPISODE_SERVICE),
                          hint: str = "another graph is running there; stop it or run this one with another "
                                      "ROS_DOMAIN_ID") -> None:
    """Refuse to start next to another graph (a second demo, a real cell) on the same DDS domain: their
    services and topics would mix into this run's trials."""
    probe = Node("graph_probe", context=context)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            served = {name for name, _ in probe.get_service_names_and_types()}
            clash = sorted(served & set(services))
            if clash:
                raise RuntimeError(f"{', '.join(clash)} already served on ROS_DOMAIN_ID "
                                   f"{os.environ.get('ROS_DOMAIN_ID', '0')}: {hint}")
            time.sleep(0.1)
    finally:
        probe.destroy_node()



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

    def call(self, name: str, request, timeout_s: float = SERVICE_TIMEOUT_S):
        return self.call_client(self.clients[name], request, timeout_s)

    def call_client(self, client, request, timeout_s: float = SERVICE_TIMEOUT_S):
        """Call any client of the operator node (spun by the graph's thread), with the timeout."""
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {client.srv_name} did not answer within {timeout_s:.0f} s")
            time.sleep(0.01)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10)
        for node in reversed(self.nodes + [self.operator]):
            node.destroy_node()


def run_graph_session(prog: str, context, body: Callable[[Callable[[OperatorGraph], OperatorGraph]], None],
                      errors: tuple[type[BaseException], ...] = (RuntimeError, ValueError),
                      interrupted: str = "") -> int:
    """A command's whole life on ``context``: ``body(keep)`` builds its graph (``graph = keep(OperatorGraph(...))``)
    and runs; expected errors print as one line (exit 1), Ctrl-C exits 130 (with ``interrupted`` said), and the
    graph is closed and the context shut down whatever happened."""
    graphs: list[OperatorGraph] = []

    def keep(graph: OperatorGraph) -> OperatorGraph:
        graphs.append(graph)
        return graph

    try:
        body(keep)
    except errors as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if interrupted:
            print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    finally:
        for graph in graphs:
            graph.close()
        rclpy.try_shutdown(context=context)
    return 0
