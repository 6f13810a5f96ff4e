"""The SimplerEnv cell: simpler_bridge and the Kinova driver on the ``simpler`` backend, one env in one process
(the ``simpler_cell`` executable, simpler.launch.py and the SimplerEnv evaluation all build it here)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from rclpy.parameter import Parameter

from robovlms_drivers.kinova.driver_node import KinovaDriverNode
from robovlms_io.spin import run_nodes
from robovlms_simpler.simpler_backend import SimplerBackend
from robovlms_simpler.simpler_bridge_node import SimplerBridge
from robovlms_simpler.simpler_cell import SimplerCell


@dataclass
class SimplerCellNodes:
    bridge: SimplerBridge
    driver: KinovaDriverNode

    @property
    def nodes(self) -> list:
        return [self.bridge, self.driver]


def compose_simpler_cell(context=None, bridge_parameters: list[Parameter] = (),
                         driver_parameters: list[Parameter] = (), cell: SimplerCell | None = None) -> SimplerCellNodes:
    """The bridge (building the env from its parameters unless ``cell`` is given) and the driver on it."""
    kwargs = {} if context is None else {"context": context}
    bridge = SimplerBridge(cell=cell, parameter_overrides=list(bridge_parameters), **kwargs)
    try:
        driver = KinovaDriverNode(backend=SimplerBackend(bridge.cell),
                                  parameter_overrides=[Parameter("backend", value="simpler"), *driver_parameters],
                                  **kwargs)
    except Exception:
        bridge.destroy_node()
        raise
    return SimplerCellNodes(bridge, driver)


def main(args: list[str] | None = None) -> int:
    return run_nodes("simpler_cell", lambda: compose_simpler_cell().nodes, args)


if __name__ == "__main__":
    sys.exit(main())
