"""`kinova_sim_cell`: the twin bridge and the Kinova driver (sim backend) in one process on one KinovaCell,
so the simulated graph has exactly one simulator. The bridge owns physics stepping (at its control_rate);
the driver only sets twists and reads state, both under `cell.lock`."""
from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from robovlms_drivers.kinova.backend import BackendUnavailable
from robovlms_drivers.kinova.driver_node import KinovaDriverNode
from robovlms_drivers.kinova.sim_backend import SimBackend


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    nodes = []
    try:
        from robovlms_twin.twin_bridge_node import TwinBridge

        bridge = TwinBridge()  # builds the cell from its own parameters (image size, task, seed, ...)
        nodes.append(bridge)
        nodes.append(KinovaDriverNode(backend=SimBackend(bridge.cell, steps_cell=False)))
        # One thread: rclpy's MultiThreadedExecutor busy-waits and would steal the GIL from physics/rendering.
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (ImportError, BackendUnavailable, ValueError) as err:
        print(f"kinova_sim_cell: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in reversed(nodes):
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
