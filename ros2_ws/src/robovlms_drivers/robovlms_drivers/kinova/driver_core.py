"""The driver's safety state machine, free of ROS: commands in, backend calls out.

Motion model: each valid command is a twist held for its own period (capped by the watchdog timeout), then
the arm holds (zero twist). If no valid command arrives for `watchdog_timeout` the backend gets an explicit
Stop and the state becomes WATCHDOG until the next valid command; unlike a twist controller that re-sends the
last twist forever, a hung commander therefore stops the arm. E-stop and faults stop the arm and refuse
commands until reset / cleared.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, Frame
from robovlms_drivers.kinova.safety import (
    CommandRejected,
    GripperHysteresis,
    InFlight,
    MotionLimits,
    WorkspaceBox,
    limit_to_workspace,
    to_safe_twist,
)
from robovlms_io.commands import Command

STATE_READY, STATE_MOVING, STATE_WATCHDOG, STATE_ESTOP, STATE_FAULT = range(5)  # DriverStatus constants
ZERO3 = np.zeros(3)


@dataclass(frozen=True)
class SafetyConfig:
    """Everything the state machine needs besides the backend."""

    limits: MotionLimits
    workspace: WorkspaceBox
    watchdog_timeout: float = 0.2
    tick_period: float = 0.02
    gripper_close_threshold: float = 0.6
    gripper_open_threshold: float = 0.4
    gripper_open_position: float = 0.0
    gripper_closed_position: float = 1.0


@dataclass(frozen=True)
class StatusSnapshot:
    state: int
    command_age: float  # seconds since the last valid command, -1 before the first one
    estop_latched: bool
    rejected_commands: int
    last_rejection: str
    fault: str
    gripper_closed: bool


def feedback_problem(state: ArmState) -> str:
    """Why a feedback sample cannot be trusted (empty when it can): the workspace box and tool-frame
    commands depend on it, and NaN would silently switch the box off."""
    values = np.concatenate([np.ravel(state.joint_positions), np.ravel(state.ee_position),
                             np.ravel(state.ee_quaternion), [state.gripper_position]]).astype(float)
    if not np.all(np.isfinite(values)):
        return "invalid arm feedback: non-finite joint, pose or gripper value"
    if np.ravel(state.ee_position).shape != (3,) or np.ravel(state.ee_quaternion).shape != (4,):
        return "invalid arm feedback: malformed end-effector pose"
    if abs(float(np.linalg.norm(state.ee_quaternion)) - 1.0) > 0.1:
        return "invalid arm feedback: end-effector orientation is not a unit quaternion"
    return ""


class DriverCore:
    """Validates commands, enforces watchdog / e-stop / faults / workspace and drives an ArmBackend."""

    def __init__(self, backend: ArmBackend, config: SafetyConfig) -> None:
        self.backend = backend
        self.config = config
        self.gripper = GripperHysteresis(config.gripper_close_threshold, config.gripper_open_threshold)
        self.arm_state = ArmState()
        self.estop_latched = False
        self.fault = ""
        self.rejected_commands = 0
        self.last_rejection = ""
        self._twist: tuple[np.ndarray, np.ndarray] | None = None
        self._deadline = 0.0
        self._last_command_time: float | None = None
        self._watchdog_tripped = False
        self._halted = False  # Stop already sent for the current e-stop / fault episode
        self.has_feedback = False  # no motion before the arm's pose is known (workspace box, tool frame)
        self._moving = False  # the twist last sent to the backend was not zero
        self._in_flight = InFlight(config.workspace.lag, config.tick_period)
        self._now = 0.0

    # -- inputs -------------------------------------------------------------------------------------
    def handle_command(self, command: Command, now: float) -> str | None:
        """Apply one end-effector command; return the rejection reason, or None if accepted."""
        self._now = now
        try:
            if self.estop_latched:
                raise CommandRejected("e-stop latched (call driver/reset_estop)")
            if self.fault:
                raise CommandRejected(f"fault: {self.fault} (call driver/clear_faults)")
            if not self.has_feedback:
                raise CommandRejected("no valid arm feedback yet")
            twist = to_safe_twist(command, self.arm_state.ee_quaternion, self.config.limits)
        except CommandRejected as rejection:
            self.rejected_commands += 1
            self.last_rejection = str(rejection)
            self._hold()
            return self.last_rejection
        self._twist = twist.linear, twist.angular
        self._deadline = now + min(twist.period, self.config.watchdog_timeout)
        self._last_command_time = now
        self._watchdog_tripped = False
        changed = None if twist.gripper is None else self.gripper.update(twist.gripper)
        if changed is not None:
            cfg = self.config
            self._call(self.backend.send_gripper,
                       cfg.gripper_closed_position if changed else cfg.gripper_open_position)
        self._send_current_twist()
        return None

    def trigger_estop(self) -> None:
        """Latch the e-stop and stop the arm now."""
        self.estop_latched = True
        self._twist = None
        self._halted = True
        self._call(self.backend.stop)

    def reset_estop(self) -> str:
        """Unlatch the e-stop; motion needs a fresh command afterwards."""
        was_latched = self.estop_latched
        self.estop_latched = False
        self._forget_commands()
        return "e-stop reset" if was_latched else "e-stop was not latched"

    def clear_faults(self) -> tuple[bool, str]:
        """Ask the backend to clear faults; the next tick re-reads whether one persists."""
        try:
            self.backend.clear_faults()
        except Exception as err:  # backend/SDK errors of any type are reported, never raised into ROS
            return False, f"clear_faults failed: {err}"
        previous, self.fault = self.fault, ""
        self._forget_commands()
        return True, f"cleared fault: {previous}" if previous else "no fault was active"

    # -- periodic ------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Read feedback and enforce e-stop, faults, watchdog, command expiry and the workspace box."""
        self._now = now
        try:
            state = self.backend.read_state()
            problem = state.fault or feedback_problem(state)
            if problem:
                self.fault = problem
            else:
                self.arm_state, self.has_feedback = state, True
        except Exception as err:  # a lost connection must stop motion, whatever the SDK raises
            self.fault = f"feedback error: {err}"
        if self.estop_latched or self.fault:
            self._twist = None
            if not self._halted:
                self._halted = True
                self._call(self.backend.stop)
            return
        self._halted = False
        if self._last_command_time is not None and now - self._last_command_time > self.config.watchdog_timeout:
            if not self._watchdog_tripped:
                self._watchdog_tripped = True
                self._twist = None
                self._call(self.backend.stop)
            return
        if self._twist is None:
            return
        if now < self._deadline:
            # The twist sent now is held for one tick; on the last tick scale it so the motion integrates
            # to the commanded delta instead of overshooting by up to one tick.
            self._send_current_twist(min(1.0, (self._deadline - now) / self.config.tick_period))
        else:
            self._hold()

    def status(self, now: float) -> StatusSnapshot:
        if self.estop_latched:
            state = STATE_ESTOP
        elif self.fault:
            state = STATE_FAULT
        elif self._watchdog_tripped:
            state = STATE_WATCHDOG
        elif self._twist is not None and self._moving:
            state = STATE_MOVING
        else:
            state = STATE_READY
        age = -1.0 if self._last_command_time is None else now - self._last_command_time
        return StatusSnapshot(state, age, self.estop_latched, self.rejected_commands, self.last_rejection,
                              self.fault, bool(self.gripper.closed))

    # -- helpers -------------------------------------------------------------------------------------
    def _send_current_twist(self, scale: float = 1.0) -> None:
        # Re-checked here because a backend call in the same command (the gripper) may just have faulted.
        if self.estop_latched or self.fault:
            self._twist = None
            return
        linear, angular = self._twist[0] * scale, self._twist[1] * scale
        linear = limit_to_workspace(linear, self.arm_state.ee_position, self.config.workspace,
                                    self.config.tick_period, self._in_flight.displacement(self._now))
        if not (np.all(np.isfinite(linear)) and np.all(np.isfinite(angular))):
            self.fault = "non-finite twist computed; refusing to move"
            self._twist = None
            self._call(self.backend.stop)
            return
        self._moving = bool(np.any(linear != 0.0) or np.any(angular != 0.0))
        self._in_flight.record(self._now, linear)
        self._call(self.backend.send_twist, linear, angular, Frame.BASE)

    def _hold(self) -> None:
        """Zero twist: the arm holds its pose (not an error state)."""
        self._twist = None
        if not (self.estop_latched or self.fault):
            self._in_flight.record(self._now, ZERO3)
            self._call(self.backend.send_twist, ZERO3, ZERO3, Frame.BASE)

    def _forget_commands(self) -> None:
        self._twist = None
        self._last_command_time = None
        self._watchdog_tripped = False

    def _call(self, method, *args) -> None:
        """Call the backend; any SDK error becomes a fault (which stops the arm on the next tick)."""
        try:
            method(*args)
        except Exception as err:
            self.fault = f"{getattr(method, '__name__', 'backend call')} failed: {err}"
