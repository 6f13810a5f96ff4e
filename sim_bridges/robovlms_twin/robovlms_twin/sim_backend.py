"""The Kinova driver's ``sim`` backend: an ArmBackend on the MuJoCo twin (KinovaCell), same interface as the
real arm. Registered as a robovlms_drivers backend plug-in by this package's setup.py."""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, Frame
from robovlms_io.rotations import quaternion_to_matrix
from robovlms_twin.cell import CellConfig, KinovaCell


class SimBackend(ArmBackend):
    """Drives a KinovaCell. With a shared `cell` (e.g. hosted by the twin bridge, which steps it) the
    backend only commands and reads it under `cell.lock`; without one it builds its own cell and steps it
    in real time on a background thread at `control_rate`."""

    name = "sim"

    @classmethod
    def from_parameters(cls, params) -> "SimBackend":
        """A twin of its own, stepped in real time at the driver's control rate."""
        return cls(control_rate=params.control_rate)

    def __init__(self, cell=None, control_rate: float = 50.0, steps_cell: bool | None = None,
                 task: str | None = None, seed: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cell = cell
        self.control_rate = control_rate
        self._steps_cell = (cell is None) if steps_cell is None else steps_cell
        self._task = task
        self._seed = seed
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._gripper_closure: float | None = None  # the driver's last gripper command
        self._gripper_reset_count = 0  # cell.reset_count when that command was applied
        self._clock = clock
        # The cell's twist was set by this backend at `_twist_since` (clock time) in episode `_twist_reset_count`.
        self._twist_since = 0.0
        self._twist_reset_count = -1

    def connect(self) -> None:
        if self.cell is None:
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
            self._reassert_gripper_after_reset()
            if frame is Frame.TOOL:
                rotation = quaternion_to_matrix(self.cell.ee_pose()[1])
                linear, angular = rotation @ np.asarray(linear, float), rotation @ np.asarray(angular, float)
            self._hold_twist(np.asarray(linear, float), np.asarray(angular, float))

    def send_gripper(self, closure: float) -> None:
        with self.cell.lock:
            self.cell.set_gripper(float(closure))
            self._gripper_closure, self._gripper_reset_count = float(closure), self.cell.reset_count

    def _reassert_gripper_after_reset(self) -> None:
        """Like the real Robotiq, the twin's gripper keeps the last commanded position, so the driver only
        sends gripper changes. A twin episode reset reopens the gripper behind the driver's back; without
        this, a "closed" command after a reset is no change for the driver and the fingers stay open. Every
        accepted command reaches send_twist (after any send_gripper), so the gripper is restored from the
        first command of the new episode on, as `cell.act` would set it."""
        if self._gripper_closure is not None and self._gripper_reset_count != self.cell.reset_count:
            self.cell.set_gripper(self._gripper_closure)
            self._gripper_reset_count = self.cell.reset_count

    def stop(self) -> None:
        with self.cell.lock:
            self._hold_twist(np.zeros(3), np.zeros(3))

    def _hold_twist(self, linear: np.ndarray, angular: np.ndarray) -> None:
        """Make (linear, angular) the twist in force from now on.

        A real arm integrates each twist over the wall-clock time it is held. The twin integrates it over
        the physics ticks that happen to run while it is held, and those come from the bridge's timer at an
        arbitrary phase to the driver's ticks: measured, up to 13% of every commanded delta was lost (or
        added), systematically for a given phase. So when a twist is replaced, the target pose is shifted by
        the part of it the wall clock held but physics did not integrate (or back by any excess): the twin
        moves by the integral of the commanded twists, like the arm, without extra lag."""
        now = self._clock()
        if self._twist_reset_count == self.cell.reset_count:  # a reset in between dropped the motion in flight
            in_force, turning, integrated = self.cell.commanded_twist()
            # Tick aliasing costs at most one physics tick. A longer shortfall means physics runs slower than
            # real time (a starved process): making that up would carry the twin past the positions the
            # driver's workspace check has seen, so that motion is left out, as the twin's own lag.
            # Excess integration (a burst of physics ticks) is taken back by at most one tick too.
            # The physics tick is whoever steps the cell's (the twin bridge's rate when it hosts the cell).
            tick = self.cell.last_step_duration or 1.0 / self.control_rate
            missing = float(np.clip(max(now - self._twist_since, 0.0) - integrated, -tick, tick))
            if missing != 0.0:
                self.cell.shift_target(in_force * missing, turning * missing)
        self.cell.set_ee_velocity(linear, angular)
        self._twist_since, self._twist_reset_count = now, self.cell.reset_count

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
            self.stop()
