"""The driver's safety rules, pure (no ROS, no vendor SDK): a raw command either becomes a clamped base-frame
twist (``to_safe_twist``) or is refused with the reason; each tick the twist is limited to the workspace box;
the gripper command is binarised with hysteresis.

Conventions: positions in metres, rotations as rotation vectors in radians, quaternions x, y, z, w,
twists as (linear m/s, angular rad/s) in base_link.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from robovlms_drivers.kinova.backend import Frame
from robovlms_io.commands import GRIPPER_UNCHANGED, Command
from robovlms_io.names import BASE_FRAME, TOOL_FRAME
from robovlms_io.rotations import quaternion_to_matrix

BASE_FRAME_IDS = (BASE_FRAME, "")
TOOL_FRAME_IDS = (TOOL_FRAME,)
GRIPPER_TOLERANCE = 1e-3


class CommandRejected(ValueError):
    """A command that must not move the arm; `str(err)` is the reason shown in DriverStatus."""


@dataclass(frozen=True)
class MotionLimits:
    """Speed clamps. A command faster than `refuse_factor` times a clamp is refused outright: such a
    command means a unit or scaling bug upstream, and moving "a bit" in its direction is still wrong."""

    max_linear_speed: float = 0.1
    max_angular_speed: float = 0.5
    refuse_factor: float = 10.0
    max_period: float = 1.0


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in base_link that the end effector must stay inside, and how the arm stops: it executes
    each command up to ``lag`` seconds late (the real Gen3 and the twin lag theirs by about 45-50 ms; the default
    doubles that as a margin), then can brake at ``deceleration``."""

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]
    lag: float = 0.1  # s
    deceleration: float = 1.0  # m/s^2

    def __post_init__(self) -> None:
        lower, upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lower.shape != (3,) or upper.shape != (3,) or not np.all(lower < upper):
            raise ValueError(f"workspace box needs 3 lower < upper bounds, got {self.lower} / {self.upper}")
        if not (math.isfinite(self.lag) and self.lag >= 0 and math.isfinite(self.deceleration)
                and self.deceleration > 0):
            raise ValueError(f"workspace box needs lag >= 0 and deceleration > 0, got {self.lag} / "
                             f"{self.deceleration}")

    def stopping_speed(self, distance: np.ndarray, tick: float) -> np.ndarray:
        """The highest speed towards a face ``distance`` away that the arm can hold for one tick and still brake
        to a stop before the face: v tick + v^2 / 2a <= d."""
        a = self.deceleration
        return a * (np.sqrt(tick ** 2 + 2.0 * np.maximum(distance, 0.0) / a) - tick)


class InFlight:
    """The linear velocities sent over the last ``lag`` seconds, one per tick: motion the lagging arm has still to
    make whatever is sent now."""

    def __init__(self, lag: float, tick: float) -> None:
        self.lag, self.tick = lag, tick
        self._sent: deque[tuple[float, np.ndarray]] = deque()

    def record(self, now: float, linear: np.ndarray) -> None:
        self._sent.append((now, np.asarray(linear, float).copy()))
        while self._sent and self._sent[0][0] <= now - self.lag - 1e-9:
            self._sent.popleft()

    def displacement(self, now: float) -> np.ndarray:
        """Where the arm still goes (m, base frame) because of what was sent in the last ``lag`` seconds."""
        recent = [v for sent_at, v in self._sent if sent_at > now - self.lag - 1e-9]
        return np.sum(recent, axis=0) * self.tick if recent else np.zeros(3)

    def clear(self) -> None:
        self._sent.clear()


@dataclass(frozen=True)
class ValidCommand:
    """A command that passed validation, still in its own frame."""

    delta_position: np.ndarray
    delta_rotation: np.ndarray
    gripper: float | None  # None: leave the gripper as it is (EndEffectorCommand.GRIPPER_UNCHANGED)
    period: float
    frame: Frame


def frame_from_id(frame_id: str) -> Frame:
    """Map a header.frame_id to a Frame; anything unknown is refused rather than guessed."""
    if frame_id in BASE_FRAME_IDS:
        return Frame.BASE
    if frame_id in TOOL_FRAME_IDS:
        return Frame.TOOL
    raise CommandRejected(f"unknown frame_id {frame_id[:64]!r} (use 'base_link' or 'tool_frame')")


def validate_command(command: Command, limits: MotionLimits) -> ValidCommand:
    """Check a raw end-effector command; raise CommandRejected with the reason if it must not move the arm."""
    dp = np.asarray(command.delta_position, dtype=float).reshape(3)
    dr = np.asarray(command.delta_rotation, dtype=float).reshape(3)
    gripper, period, frame_id = command.gripper, command.period, command.frame_id
    if not (np.all(np.isfinite(dp)) and np.all(np.isfinite(dr)) and math.isfinite(gripper)
            and math.isfinite(period)):
        raise CommandRejected("non-finite value in command")
    if period <= 0.0 or period > limits.max_period:
        raise CommandRejected(f"period {period:.4g} s outside (0, {limits.max_period:g}] s")
    unchanged = gripper == GRIPPER_UNCHANGED
    if not (unchanged or -GRIPPER_TOLERANCE <= gripper <= 1.0 + GRIPPER_TOLERANCE):
        raise CommandRejected(f"gripper {gripper:.4g} outside [0, 1] (and not GRIPPER_UNCHANGED)")
    frame = frame_from_id(frame_id)
    linear_speed = float(np.linalg.norm(dp)) / period
    angular_speed = float(np.linalg.norm(dr)) / period
    if linear_speed > limits.refuse_factor * limits.max_linear_speed:
        raise CommandRejected(f"linear speed {linear_speed:.3g} m/s exceeds the hard limit "
                              f"{limits.refuse_factor * limits.max_linear_speed:.3g} m/s")
    if angular_speed > limits.refuse_factor * limits.max_angular_speed:
        raise CommandRejected(f"angular speed {angular_speed:.3g} rad/s exceeds the hard limit "
                              f"{limits.refuse_factor * limits.max_angular_speed:.3g} rad/s")
    closure = None if unchanged else float(np.clip(gripper, 0.0, 1.0))
    return ValidCommand(dp, dr, closure, float(period), frame)


def clamp_norm(vector, max_norm: float) -> np.ndarray:
    """Scale a vector down to `max_norm` if longer, keeping its direction."""
    v = np.asarray(vector, float)
    norm = float(np.linalg.norm(v))
    return v * (max_norm / norm) if norm > max_norm else v.copy()


def limit_to_workspace(linear_velocity, ee_position, box: WorkspaceBox, lookahead: float,
                       in_flight=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Slow every base-frame velocity component that moves towards a face of the box so the arm still stops
    before that face: from where it will be once the motion already sent (``in_flight``, see InFlight) is done,
    it may move for ``lookahead`` (until the next check, one driver tick) and then brake. So it never passes a
    face, whatever its speed, as long as its lag is within the box's ``lag``. At the face, or already outside, no
    motion further out is left; components moving back inwards are always kept so the arm can recover."""
    v = np.asarray(linear_velocity, float).copy()
    position = np.asarray(ee_position, float) + np.asarray(in_flight, float)
    towards_upper = box.stopping_speed(np.asarray(box.upper, float) - position, lookahead)
    towards_lower = box.stopping_speed(position - np.asarray(box.lower, float), lookahead)
    return np.clip(v, -towards_lower, towards_upper)


@dataclass(frozen=True)
class SafeTwist:
    """What an accepted command becomes: a clamped base_link twist held for ``period`` and the gripper."""

    linear: np.ndarray  # m/s
    angular: np.ndarray  # rad/s
    gripper: float | None  # closure 0..1, None = leave the gripper as it is
    period: float  # s


def to_safe_twist(command: Command, ee_quaternion_xyzw, limits: MotionLimits) -> SafeTwist:
    """Validate a command and turn its per-period deltas into a clamped base_link twist (exact for a rotation
    vector applied at constant angular velocity); raise CommandRejected with the reason if it must not move
    the arm. RoboVLMs/CALVIN deltas are already in the base frame; tool-frame commands are rotated by the
    current end-effector orientation."""
    valid = validate_command(command, limits)
    linear, angular = valid.delta_position / valid.period, valid.delta_rotation / valid.period
    if valid.frame is Frame.TOOL:
        rotation = quaternion_to_matrix(ee_quaternion_xyzw)
        linear, angular = rotation @ linear, rotation @ angular
    return SafeTwist(clamp_norm(linear, limits.max_linear_speed), clamp_norm(angular, limits.max_angular_speed),
                     valid.gripper, valid.period)


class GripperHysteresis:
    """Binarise a continuous closure command with hysteresis; report only changes so the gripper is
    commanded once per open/close rather than on every control tick."""

    def __init__(self, close_threshold: float = 0.6, open_threshold: float = 0.4) -> None:
        if not 0.0 <= open_threshold < close_threshold <= 1.0:
            raise ValueError("need 0 <= open_threshold < close_threshold <= 1")
        self.close_threshold = close_threshold
        self.open_threshold = open_threshold
        self.closed: bool | None = None  # unknown until the first command

    def update(self, closure: float) -> bool | None:
        """Feed a closure in [0, 1]; return the new binary state (True = closed) if it changed, else None."""
        if self.closed is None:
            new_state = closure >= 0.5 * (self.close_threshold + self.open_threshold)
        elif self.closed:
            new_state = closure > self.open_threshold
        else:
            new_state = closure >= self.close_threshold
        if new_state == self.closed:
            return None
        self.closed = new_state
        return new_state
