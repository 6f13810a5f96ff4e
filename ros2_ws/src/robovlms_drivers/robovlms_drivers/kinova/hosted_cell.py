"""A backend in front of a simulator cell that a bridge node hosts in the same process (the CALVIN and
SimplerEnv cells): the driver's safety layer (clamps, workspace box, watchdog, e-stop) stays in front, the
backend only holds commands and reads state, and the bridge steps the simulator. Nothing here imports a
simulator: the cell is whatever the bridge passes in, with ``lock``, ``set_twist(linear, angular)`` and
``set_gripper(closure)``."""
from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from .backend import ArmBackend, ArmState, BackendUnavailable, Frame


class HostedCellBackend(ArmBackend):
    """Subclasses name the cell executable to start and say where the tool points and what the state is."""

    cell_executable: ClassVar[str]  # e.g. "ros2 run robovlms_calvin calvin_cell"
    launch_file: ClassVar[str]  # e.g. "calvin.launch.py"

    def __init__(self, cell) -> None:
        self.cell = cell

    @classmethod
    def from_parameters(cls, params) -> "HostedCellBackend":
        raise BackendUnavailable(f"the {cls.name} backend runs next to its bridge in one process: start "
                                 f"`{cls.cell_executable}` (or {cls.launch_file}), not the driver alone")

    def connect(self) -> None:
        """The simulator is already up (the bridge built it)."""

    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        linear, angular = np.asarray(linear, float), np.asarray(angular, float)
        with self.cell.lock:
            if frame is Frame.TOOL:  # the simulators take twists along the robot base's axes
                rotation = self.tool_rotation()
                linear, angular = rotation @ linear, rotation @ angular
            self.cell.set_twist(linear, angular)

    def send_gripper(self, closure: float) -> None:
        with self.cell.lock:
            self.cell.set_gripper(closure)

    def stop(self) -> None:
        with self.cell.lock:
            self.cell.set_twist(np.zeros(3), np.zeros(3))

    def clear_faults(self) -> None:
        """Simulated arms have no controller faults."""

    def close(self) -> None:
        self.stop()

    @abc.abstractmethod
    def tool_rotation(self) -> np.ndarray:
        """The tool frame's rotation in the base frame (3, 3); called with the cell's lock held."""

    @abc.abstractmethod
    def read_state(self) -> ArmState:
        """Joints, gripper and TCP pose from the cell (takes the lock itself)."""
