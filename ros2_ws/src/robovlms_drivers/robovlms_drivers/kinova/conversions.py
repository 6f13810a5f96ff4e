"""Pure conversions behind the Kinova driver: command validation, delta -> twist, frames, clamps,
workspace box, gripper hysteresis and the Kortex unit conventions. No ROS, no vendor SDK.

Conventions: positions in metres, rotations as rotation vectors in radians, quaternions x, y, z, w,
twists as (linear m/s, angular rad/s). Conversion to the Kortex API's deg/s happens in
`to_kortex_twist`, at the last moment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

BASE_FRAME_IDS = ("base_link", "")
TOOL_FRAME_IDS = ("tool_frame",)
GRIPPER_TOLERANCE = 1e-3
GRIPPER_UNCHANGED = -1.0  # robovlms_msgs/EndEffectorCommand.GRIPPER_UNCHANGED


class Frame(str, Enum):
    """Reference frame of a twist sent to a backend."""

    BASE = "base"
    TOOL = "tool"


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
    """Axis-aligned box in base_link that the end effector must stay inside."""

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]

    def __post_init__(self) -> None:
        lower, upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lower.shape != (3,) or upper.shape != (3,) or not np.all(lower < upper):
            raise ValueError(f"workspace box needs 3 lower < upper bounds, got {self.lower} / {self.upper}")


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


def validate_command(delta_position, delta_rotation, gripper: float, period: float, frame_id: str,
                     limits: MotionLimits) -> ValidCommand:
    """Check a raw end-effector command; raise CommandRejected with the reason if it must not move the arm."""
    dp = np.asarray(delta_position, dtype=float).reshape(3)
    dr = np.asarray(delta_rotation, dtype=float).reshape(3)
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


def delta_to_twist(delta_position, delta_rotation, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-period deltas -> constant twist that covers them in one period (exact for a rotation vector
    applied at constant angular velocity)."""
    if period <= 0.0:
        raise ValueError("period must be positive")
    return np.asarray(delta_position, float) / period, np.asarray(delta_rotation, float) / period


def quaternion_to_matrix(quaternion_xyzw) -> np.ndarray:
    """Rotation matrix of a (not necessarily unit) quaternion x, y, z, w."""
    x, y, z, w = np.asarray(quaternion_xyzw, float) / np.linalg.norm(quaternion_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotation_vector_to_quaternion(rotation_vector) -> np.ndarray:
    """Quaternion x, y, z, w of a rotation vector."""
    rv = np.asarray(rotation_vector, float)
    angle = float(np.linalg.norm(rv))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = rv / angle
    return np.concatenate([axis * math.sin(angle / 2), [math.cos(angle / 2)]])


def quaternion_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b of quaternions x, y, z, w."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def quaternion_to_rotation_vector(quaternion_xyzw) -> np.ndarray:
    """Rotation vector (shortest rotation) of a quaternion x, y, z, w."""
    q = np.asarray(quaternion_xyzw, float) / np.linalg.norm(quaternion_xyzw)
    if q[3] < 0:
        q = -q
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * math.atan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def tool_to_base(vector, ee_quaternion_xyzw) -> np.ndarray:
    """Express a tool-frame vector (linear or angular velocity) in base_link, given the tool orientation."""
    return quaternion_to_matrix(ee_quaternion_xyzw) @ np.asarray(vector, float)


def base_to_tool(vector, ee_quaternion_xyzw) -> np.ndarray:
    """Express a base_link vector in the tool frame, given the tool orientation."""
    return quaternion_to_matrix(ee_quaternion_xyzw).T @ np.asarray(vector, float)


def clamp_norm(vector, max_norm: float) -> np.ndarray:
    """Scale a vector down to `max_norm` if longer, keeping its direction."""
    v = np.asarray(vector, float)
    norm = float(np.linalg.norm(v))
    return v * (max_norm / norm) if norm > max_norm else v.copy()


def limit_to_workspace(linear_velocity, ee_position, box: WorkspaceBox, lookahead: float) -> np.ndarray:
    """Zero every base-frame velocity component that would carry the end effector outside the box within
    `lookahead` seconds (one control tick), or that pushes further out when it is already outside.
    Components moving back inwards are always kept so the arm can recover."""
    v = np.asarray(linear_velocity, float).copy()
    predicted = np.asarray(ee_position, float) + v * lookahead
    lower, upper = np.asarray(box.lower, float), np.asarray(box.upper, float)
    v[(v > 0) & (predicted > upper)] = 0.0
    v[(v < 0) & (predicted < lower)] = 0.0
    return v


def command_to_base_twist(command: ValidCommand, ee_quaternion_xyzw, limits: MotionLimits
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Validated command -> clamped base_link twist. RoboVLMs/CALVIN deltas are already in the base frame;
    tool-frame commands are rotated by the current end-effector orientation."""
    linear, angular = delta_to_twist(command.delta_position, command.delta_rotation, command.period)
    if command.frame is Frame.TOOL:
        linear = tool_to_base(linear, ee_quaternion_xyzw)
        angular = tool_to_base(angular, ee_quaternion_xyzw)
    return clamp_norm(linear, limits.max_linear_speed), clamp_norm(angular, limits.max_angular_speed)


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


def to_kortex_twist(linear_mps, angular_radps) -> tuple[list[float], list[float]]:
    """Kortex TwistCommand units: linear m/s, angular deg/s."""
    return [float(v) for v in linear_mps], [math.degrees(float(w)) for w in angular_radps]


def kortex_euler_deg_to_quaternion(theta_x: float, theta_y: float, theta_z: float) -> np.ndarray:
    """Kortex tool pose angles (degrees, fixed-axis X then Y then Z, i.e. R = Rz Ry Rx) -> quaternion xyzw."""
    qx = rotation_vector_to_quaternion([math.radians(theta_x), 0.0, 0.0])
    qy = rotation_vector_to_quaternion([0.0, math.radians(theta_y), 0.0])
    qz = rotation_vector_to_quaternion([0.0, 0.0, math.radians(theta_z)])
    return quaternion_multiply(qz, quaternion_multiply(qy, qx))


def kortex_joint_deg_to_rad(angles_deg) -> np.ndarray:
    """Kortex actuator positions (0..360 deg) -> radians wrapped to (-pi, pi], as in the URDF."""
    rad = np.radians(np.asarray(angles_deg, float))
    return -((-rad + math.pi) % (2 * math.pi) - math.pi)


ROBOTIQ_2F85_KNUCKLE_CLOSED_RAD = 0.8


def robotiq_percent_to_knuckle(percent: float) -> float:
    """Robotiq 2F-85 opening feedback (0 open .. 100 closed, %) -> knuckle joint angle (rad)."""
    return float(np.clip(percent, 0.0, 100.0)) / 100.0 * ROBOTIQ_2F85_KNUCKLE_CLOSED_RAD
