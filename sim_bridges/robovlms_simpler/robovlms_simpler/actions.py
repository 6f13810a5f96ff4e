"""The one place where the suite's commands meet SimplerEnv's actions (numpy only; no SimplerEnv import).

Suite: an EndEffectorCommand is a TCP motion over one control period (delta_position in metres, delta_rotation
a rotation vector in radians, both along base_link axes) and a gripper closure in [0, 1] (0 open, 1 closed).

SimplerEnv (both robots' controllers, frames ``ee_align`` / ``ee_align2``): a 7-vector of the TCP translation in
metres along the robot base's axes, a rotation (axis-angle vector, radians, base axes, about the TCP), and one
gripper value. The benchmark's policies (RT-1-X, Octo, RoboVLMs) predict roll/pitch/yaw increments, which
SimplerEnv's wrappers turn into axis-angle with transforms3d's euler2axangle (static x-y-z axes): a checkpoint
trained on such actions publishes them in delta_rotation, and ``rotation="euler"`` converts them here.
Policy-space scaling (the checkpoint's action statistics) is undone by the policy node; SimplerEnv's wrappers'
``action_scale`` is 1.

Grippers: Google Robot's controller takes a *relative* target (+1 close, -1 open, 0 hold) and SimplerEnv's
wrappers turn an absolute prediction into one by differencing, holding a switch for 15 steps ("sticky" gripper,
Octo's and RoboVLMs' Google Robot setting); WidowX takes an *absolute* binarised value (+1 open, -1 close).
"""
from __future__ import annotations

import numpy as np

from robovlms_io.rotations import euler_to_matrix, matrix_to_quaternion, matrix_to_rotvec, quaternion_to_matrix

ROTATION_FORMATS = ("rotvec", "euler")
STICKY_GRIPPER_STEPS = 15  # SimplerEnv's Octo wrapper (and RoboVLMs' Google Robot eval): sticky_gripper_num_repeat
CLOSE_THRESHOLD = 0.5  # closure at or above which a binarised gripper means "closed"


def rotation_to_axangle(delta_rotation: np.ndarray, rotation: str = "rotvec") -> np.ndarray:
    """The command's rotation as SimplerEnv's axis-angle vector: a rotation vector passes through; ``euler``
    (roll, pitch, yaw increments, fixed axes) becomes axis * angle, as transforms3d.euler.euler2axangle."""
    values = np.asarray(delta_rotation, dtype=np.float64).reshape(3)
    if rotation == "rotvec":
        return values.copy()
    if rotation == "euler":
        return matrix_to_rotvec(euler_to_matrix(values))
    raise ValueError(f"rotation must be one of {ROTATION_FORMATS}, not {rotation!r}")


def absolute_gripper(closure: float) -> float:
    """WidowX: +1 open, -1 closed (SimplerEnv's ``2 * (open > 0.5) - 1``)."""
    return -1.0 if closure >= CLOSE_THRESHOLD else 1.0


class RelativeGripper:
    """Google Robot: absolute closures in, relative targets out (+1 close, -1 open, 0 hold), per env step.

    The first step of an episode sends 0; afterwards the difference of consecutive closures, and a change of more
    than half the range is repeated for STICKY_GRIPPER_STEPS steps (the switching step included) whatever the
    closures do meanwhile: the planner-interpolated gripper needs several steps to travel."""

    def __init__(self, sticky_steps: int = STICKY_GRIPPER_STEPS) -> None:
        self.sticky_steps = sticky_steps
        self.reset()

    def reset(self) -> None:
        self._previous: float | None = None
        self._sticky_value, self._sticky_count = 0.0, 0

    def __call__(self, closure: float) -> float:
        closure = float(closure)
        relative = 0.0 if self._previous is None else closure - self._previous
        self._previous = closure
        if abs(relative) > 0.5 and self._sticky_count == 0:
            self._sticky_value = relative
        if self._sticky_value:
            self._sticky_count += 1
            relative = self._sticky_value
            if self._sticky_count == self.sticky_steps:
                self._sticky_value, self._sticky_count = 0.0, 0
        return float(relative)


def command_to_simpler(delta_position: np.ndarray, delta_rotation: np.ndarray, gripper: float,
                       rotation: str = "rotvec") -> np.ndarray:
    """A command (deltas over one env step; ``gripper`` already in the robot's convention) as the env's action."""
    position = np.asarray(delta_position, dtype=np.float64).reshape(3)
    axangle = rotation_to_axangle(delta_rotation, rotation)
    action = np.concatenate([position, axangle, [float(gripper)]])
    if not np.isfinite(action).all():
        raise ValueError("command has non-finite values")
    return action


def pose_in_base(base_pose: np.ndarray, tcp_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ManiSkill poses (p xyz, q wxyz; world frame) of the robot base and the TCP -> the TCP in base_link as
    (position, quaternion x, y, z, w), what the driver publishes as ee_pose."""
    base, tcp = np.asarray(base_pose, float).reshape(7), np.asarray(tcp_pose, float).reshape(7)
    base_rotation = _wxyz_matrix(base[3:])
    rotation = base_rotation.T @ _wxyz_matrix(tcp[3:])
    return base_rotation.T @ (tcp[:3] - base[:3]), matrix_to_quaternion(rotation)


def _wxyz_matrix(quaternion_wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = quaternion_wxyz
    return quaternion_to_matrix(np.array([x, y, z, w]))
