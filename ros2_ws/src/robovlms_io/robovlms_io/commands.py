"""robovlms_msgs/EndEffectorCommand both ways: the one place for the field layout of an action."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time

from robovlms_msgs.msg import EndEffectorCommand

# EndEffectorCommand.GRIPPER_UNCHANGED: exactly -1, "leave the gripper as it is" (hold commands).
GRIPPER_UNCHANGED = float(EndEffectorCommand.GRIPPER_UNCHANGED)


def period_duration(seconds: float) -> Duration:
    """A control period as a builtin_interfaces/Duration."""
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


def duration_seconds(duration: Any) -> float:
    return duration.sec + duration.nanosec * 1e-9


def end_effector_command(arm: Sequence[float], gripper: float, frame_id: str, stamp: Time,
                         period: Duration) -> EndEffectorCommand:
    """A command from 6 arm values (delta position in m, then rotation vector in rad, per period) and a
    gripper value (closure in [0, 1] or GRIPPER_UNCHANGED)."""
    command = EndEffectorCommand(gripper=float(gripper), period=period)
    command.header.stamp = stamp
    command.header.frame_id = frame_id
    (command.delta_position.x, command.delta_position.y, command.delta_position.z,
     command.delta_rotation.x, command.delta_rotation.y, command.delta_rotation.z) = (float(v) for v in arm)
    return command


@dataclass(frozen=True)
class Command:
    """The content of an EndEffectorCommand, unvalidated (the driver's safety layer judges it)."""

    delta_position: np.ndarray  # (3,) m over one period, in frame_id
    delta_rotation: np.ndarray  # (3,) rotation vector, rad, in frame_id
    gripper: float  # closure 0 open .. 1 closed, or GRIPPER_UNCHANGED
    period: float  # s
    frame_id: str

    @property
    def action(self) -> np.ndarray:
        """(7,) dx, dy, dz, drx, dry, drz, gripper: the layout of a policy action."""
        return np.concatenate([self.delta_position, self.delta_rotation, [self.gripper]])


def parse_command(msg: Any) -> Command:
    """Read an EndEffectorCommand (an rclpy message or a rosbags-deserialised one)."""
    p, r = msg.delta_position, msg.delta_rotation
    return Command(np.array([p.x, p.y, p.z], dtype=np.float64), np.array([r.x, r.y, r.z], dtype=np.float64),
                   float(msg.gripper), duration_seconds(msg.period), str(msg.header.frame_id))
