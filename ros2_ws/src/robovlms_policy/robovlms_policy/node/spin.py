"""Entry-point helper shared by the package's executables: build a node, spin it, report start-up errors."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def spin_node(build: Callable[[], Node], executable: str, args: list[str] | None = None) -> int:
    """Run ``build()`` until shutdown; a start-up error (configuration, checkpoint) is one line and exit 1.

    One executor thread: rclpy's MultiThreadedExecutor busy-waits while callbacks are blocked by their
    callback group, which measurably starved the policy's inference thread of the GIL.
    """
    rclpy.init(args=args)
    try:
        node = build()
    except Exception as error:  # no traceback for a wrong parameter or a missing file
        print(f"{executable}: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
