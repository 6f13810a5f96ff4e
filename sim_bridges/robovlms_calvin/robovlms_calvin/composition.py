"""The CALVIN cell: calvin_bridge and the Kinova driver on the ``calvin`` backend, one env in one process
(the ``calvin_cell`` executable, calvin.launch.py and the CALVIN evaluation all build it here)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from rclpy.parameter import Parameter

from robovlms_calvin.calvin_backend import CalvinBackend
from robovlms_calvin.calvin_bridge_node import CalvinBridge
from robovlms_drivers.kinova.driver_node import KinovaDriverNode
from robovlms_io.spin import run_nodes


@dataclass
class CalvinCellNodes:
    bridge: CalvinBridge
    driver: KinovaDriverNode

    @property
    def nodes(self) -> list:
        return [self.bridge, self.driver]


def compose_calvin_cell(context=None, bridge_parameters: list[Parameter] = (), driver_parameters: list[Parameter] = (),
                        cell=None, instructions: dict[str, str] | None = None) -> CalvinCellNodes:
    """The bridge (building the env from its parameters unless ``cell`` is given) and the driver on it."""
    kwargs = {} if context is None else {"context": context}
    bridge = CalvinBridge(cell=cell, instructions=instructions, parameter_overrides=list(bridge_parameters),
                          **kwargs)
    try:
        driver = KinovaDriverNode(backend=CalvinBackend(bridge.cell),
                                  parameter_overrides=[Parameter("backend", value="calvin"), *driver_parameters],
                                  **kwargs)
    except Exception:
        bridge.destroy_node()
        raise
    return CalvinCellNodes(bridge, driver)


def main(args: list[str] | None = None) -> int:
    return run_nodes("calvin_cell", lambda: compose_calvin_cell().nodes, args)


if __name__ == "__main__":
    sys.exit(main())
