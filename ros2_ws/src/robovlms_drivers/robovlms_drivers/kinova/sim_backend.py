"""ArmBackend on the MuJoCo twin (robovlms_twin.cell.KinovaCell), same interface as the real arm."""
from __future__ import annotations

import threading
import time

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, BackendUnavailable
from robovlms_drivers.kinova.conversions import Frame, tool_to_base


class SimBackend(ArmBackend):
    """Drives a KinovaCell. With a shared `cell` (e.g. hosted by the twin bridge, which steps it) the
    backend only commands and reads it under `cell.lock`; without one it builds its own cell and steps it
    in real time on a background thread at `control_rate`."""

    name = "sim"

    def __init__(self, cell=None, control_rate: float = 50.0, steps_cell: bool | None = None,
                 task: str | None = None, seed: int = 0) -> None:
        self.cell = cell
        self.control_rate = control_rate
        self._steps_cell = (cell is None) if steps_cell is None else steps_cell
        self._task = task
        self._seed = seed
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def connect(self) -> None:
        if self.cell is None:
            try:
                from robovlms_twin.cell import CellConfig, KinovaCell
            except ImportError as err:
                raise BackendUnavailable(f"the sim backend needs the robovlms_twin package: {err}") from err
            self.cell = KinovaCell(CellConfig())
            with self.cell.lock:
                self.cell.reset(self._task or self.cell.task_names[0], self._seed)
        if self._steps_cell and self._thread is None:
            self._running.set()
            self._thread = threading.Thread(target=self._step_loop, name="sim_backend_stepper", daemon=True)
            self._thread.start()

    def _step_loop(self) -> None:
        """Advance physics in (approximately) real time so the twin moves like the arm would."""
        dt = 1.0 / self.control_rate
        next_time = time.monotonic()
        while self._running.is_set():
            with self.cell.lock:
                self.cell.step(dt)
            next_time += dt
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:  # fell behind (slow machine): do not try to catch up in a burst
                next_time = time.monotonic()

    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        with self.cell.lock:
            if frame is Frame.TOOL:
                _, quaternion = self.cell.ee_pose()
                linear, angular = tool_to_base(linear, quaternion), tool_to_base(angular, quaternion)
            self.cell.set_ee_velocity(np.asarray(linear, float), np.asarray(angular, float))

    def send_gripper(self, closure: float) -> None:
        with self.cell.lock:
            self.cell.set_gripper(float(closure))

    def stop(self) -> None:
        with self.cell.lock:
            self.cell.stop()

    def clear_faults(self) -> None:
        """The twin has no controller faults to clear."""

    def read_state(self) -> ArmState:
        with self.cell.lock:
            position, quaternion = self.cell.ee_pose()
            return ArmState(
                joint_positions=np.asarray(self.cell.joint_positions(), float).copy(),
                gripper_position=float(self.cell.gripper_joint_position()),
                ee_position=np.asarray(position, float).copy(),
                ee_quaternion=np.asarray(quaternion, float).copy(),
            )

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.cell is not None:
            with self.cell.lock:
                self.cell.stop()
