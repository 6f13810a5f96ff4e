"""The simulated cell: the twin bridge and the Kinova driver (``sim`` backend) on one KinovaCell in one process,
so the simulated graph has exactly one simulator. The bridge owns physics stepping (at its control_rate); the
driver only sets twists and reads state, both under ``cell.lock``.

``compose_sim_cell`` is the one composition: the ``kinova_sim_cell`` executable, ``make demo`` and the tests
all build the cell with it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from rclpy.parameter import Parameter

from robovlms_drivers.kinova.driver_node import KinovaDriverNode
from robovlms_io.spin import run_nodes
from robovlms_twin.cell import KinovaCell
from robovlms_twin.sim_backend import SimBackend
from robovlms_twin.twin_bridge_node import TwinBridge


@dataclass
class SimCell:
    cell: KinovaCell
    bridge: TwinBridge
    driver: KinovaDriverNode

    @property
    def nodes(self) -> list:
        return [self.bridge, self.driver]


def compose_sim_cell(context=None, cell: KinovaCell | None = None, bridge_parameters: list[Parameter] = (),
                     driver_parameters: list[Parameter] = ()) -> SimCell:
    """The bridge (building the cell from its parameters unless ``cell`` is given) and the driver on it."""
    kwargs = {} if context is None else {"context": context}
    bridge = TwinBridge(cell=cell, parameter_overrides=list(bridge_parameters), **kwargs)
    try:
        driver = KinovaDriverNode(backend=SimBackend(bridge.cell, steps_cell=False),
                                  parameter_overrides=[Parameter("backend", value="sim"), *driver_parameters],
                                  **kwargs)
    except Exception:
        bridge.destroy_node()
        raise
    return SimCell(bridge.cell, bridge, driver)


def main(args: list[str] | None = None) -> int:
    return run_nodes("kinova_sim_cell", lambda: compose_sim_cell().nodes, args)


if __name__ == "__main__":
    sys.exit(main())
