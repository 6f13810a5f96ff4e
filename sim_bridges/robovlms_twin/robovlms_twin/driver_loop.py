"""The simulated cell without DDS: each end-effector command goes through the Kinova driver's own safety layer
(DriverCore: speed clamps, workspace box, gripper hysteresis) into the sim backend, with the driver ticking at
its control rate and physics stepped in lockstep, so direct rollouts (data collection, fast evaluation) move
the twin exactly as the ROS graph does. The driver's limits come from the same parameter files as
``kinova_sim.launch.py`` and ``make demo`` (kinova_driver.yaml, then twin.yaml's driver section).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from robovlms_drivers.kinova.driver_core import DriverCore
from robovlms_drivers.kinova.driver_node import DriverParams
from robovlms_io.commands import GRIPPER_UNCHANGED, Command
from robovlms_io.names import BASE_FRAME
from robovlms_io.params import parameter_defaults, validate_value
from robovlms_twin.cell import KinovaCell
from robovlms_twin.sim_backend import SimBackend

DRIVER_FILES = ("kinova_driver.yaml", "twin.yaml")


def sim_driver_params(config_dir: Path | None = None) -> DriverParams:
    """The driver parameters of the simulated cell, from the bringup parameter files in launch order."""
    if config_dir is None:
        from ament_index_python.packages import get_package_share_directory

        config_dir = Path(get_package_share_directory("robovlms_bringup")) / "config"
    values = parameter_defaults(DriverParams)
    for name in DRIVER_FILES:
        for key, section in yaml.safe_load((config_dir / name).read_text()).items():
            if key.rstrip("/").split("/")[-1] == "kinova_driver":
                values.update(section["ros__parameters"])
    fields = {f.name: f for f in dataclasses.fields(DriverParams)}
    return DriverParams(**{name: validate_value(fields[name], value) for name, value in values.items()})


class DriverLoop:
    """One command per control period through DriverCore into ``cell``; physics advances with the driver."""

    def __init__(self, cell: KinovaCell, params: DriverParams | None = None, period: float = 0.1) -> None:
        self.cell = cell
        self.params = params or sim_driver_params()
        self.period = period
        self._tick = 1.0 / self.params.control_rate
        self._now = 0.0
        self.backend = SimBackend(cell, steps_cell=False, clock=lambda: self._now)
        self.core = DriverCore(self.backend, self.params.safety())
        self.core.tick(self._now)

    def act(self, delta_position, delta_rotation, gripper: float = GRIPPER_UNCHANGED) -> str | None:
        """Send one command, then run one control period of driver ticks and physics; returns the driver's
        rejection reason (None when accepted)."""
        command = Command(np.asarray(delta_position, float), np.asarray(delta_rotation, float), float(gripper),
                          self.period, BASE_FRAME)
        reason = self.core.handle_command(command, self._now)
        for _ in range(int(round(self.period / self._tick))):
            self.core.tick(self._now)
            with self.cell.lock:
                self.cell.step(self._tick)
            self._now += self._tick
        return reason

    def hold(self) -> None:
        """A hold command, as the policy node publishes while it waits (zero motion, gripper unchanged)."""
        self.act(np.zeros(3), np.zeros(3), GRIPPER_UNCHANGED)
