"""Building robovlms_msgs/EndEffectorCommand messages: one place for the field layout of an action."""
from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Duration, Time

from robovlms_msgs.msg import EndEffectorCommand


def period_duration(seconds: float) -> Duration:
    """A control period as a builtin_interfaces/Duration."""
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


def end_effector_command(arm: Sequence[float], gripper: float, frame_id: str, stamp: Time,
                         period: Duration) -> EndEffectorCommand:
    """A command from 6 arm values (delta position in m, then rotation vector in rad, per period) and a
    gripper value (closure in [0, 1] or EndEffectorCommand.GRIPPER_UNCHANGED)."""
    command = EndEffectorCommand(gripper=float(gripper), period=period)
    command.header.stamp = stamp
    command.header.frame_id = frame_id
    (command.delta_position.x, command.delta_position.y, command.delta_position.z,
     command.delta_rotation.x, command.delta_rotation.y, command.delta_rotation.z) = (float(v) for v in arm)
    return command
