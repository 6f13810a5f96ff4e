"""The one main() helper of every executable: build the nodes, spin them on one thread, shut down cleanly.

Start-up errors (a bad parameter, a missing device or file) print one line and exit 1. SIGINT and SIGTERM stop
the spinning, and the nodes are destroyed while their context is still valid, so a node's ``destroy_node``
can still publish (the trial recorder idles the policy and closes its bag) before rclpy shuts down. A node
that sets ``exit_code`` (a camera whose device vanished) ends the process with that code.

One executor thread: rclpy's MultiThreadedExecutor busy-waits while callbacks are blocked by their callback
group, which measurably starved the policy's inference thread, physics and rendering of the GIL.
"""
from __future__ import annotations

import signal
import sys
import threading
import traceback
from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SPIN_PERIOD_S = 0.1  # longest wait before a stop request is noticed


def run_nodes(executable: str, build: Callable[[], Node | Sequence[Node]], args: list[str] | None = None) -> int:
    """Run the node(s) ``build()`` returns until a stop signal, rclpy shutdown or a node's ``exit_code``."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    nodes: list[Node] = []
    code = 0
    try:
        try:
            built = build()
        except Exception as error:  # no traceback for a wrong parameter or a missing file or device
            print(f"{executable}: {error}", file=sys.stderr)
            return 1
        nodes = list(built) if isinstance(built, (list, tuple)) else [built]
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
            failed = [n.exit_code for n in nodes if getattr(n, "exit_code", None) is not None]
            if failed:
                code = failed[0]
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # a callback raised: report it, still shut the nodes down in order
        traceback.print_exc()
        code = 1
    finally:
        for node in reversed(nodes):
            try:
                node.destroy_node()
            except Exception:  # one node failing to close must not keep the others open
                traceback.print_exc()
                code = code or 1
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
