"""The one place where the suite's actions meet CALVIN's (numpy only; no calvin_env import).

Suite: an EndEffectorCommand is a TCP motion over one control period: delta_position in metres and
delta_rotation as a rotation vector in radians, both along base_link axes, plus a gripper closure in [0, 1]
(0 open, 1 closed).

CALVIN (calvin_env Robot, ``cartesian_rel``): a 7-vector in [-1, 1]: xyz in units of ``max_rel_pos``
(0.02 m), roll-pitch-yaw *increments* in units of ``max_rel_orn`` (0.05 rad), gripper +1 open / -1 close.
The increments are added to the target's fixed-axis Euler angles (pybullet's convention), and positions are
in the world frame. So a rotation vector becomes an Euler increment through the current orientation, and a
base_link delta becomes a world delta through the robot base's orientation (identity in scenes A-D: the
translation of the base does not matter for deltas).

robot_obs (15, Euler observations): tcp position (world) [0:3], tcp Euler [3:6], gripper opening width [6],
arm joints [7:14], last gripper action [14].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robovlms_io.rotations import (euler_to_matrix, matrix_to_euler, matrix_to_quaternion, matrix_to_rotvec,
                                   rotvec_to_matrix, wrap_angle)

MAX_REL_POS = 0.02  # m per action unit (calvin_env robot config max_rel_pos)
MAX_REL_ORN = 0.05  # rad per action unit (max_rel_orn)
GRIPPER_OPEN, GRIPPER_CLOSE = 1.0, -1.0
MAX_OPENING_WIDTH = 0.08  # m: the Panda gripper's opening at its joint limits (2 x 0.04)
CLOSE_THRESHOLD = 0.5  # closure at or above which the suite's gripper value means "close"


@dataclass(frozen=True)
class RobotObs:
    """CALVIN's robot_obs, by name (world frame)."""

    tcp_position: np.ndarray
    tcp_euler: np.ndarray
    opening_width: float
    joints: np.ndarray
    gripper_action: float

    @classmethod
    def parse(cls, robot_obs: np.ndarray) -> "RobotObs":
        obs = np.asarray(robot_obs, dtype=np.float64).reshape(-1)
        if obs.shape[0] != 15:
            raise ValueError(f"robot_obs has {obs.shape[0]} values; CALVIN's Euler layout has 15")
        return cls(obs[0:3].copy(), obs[3:6].copy(), float(obs[6]), obs[7:14].copy(), float(obs[14]))

    @property
    def closure(self) -> float:
        """Gripper closure in the suite's sense, from the opening width (0 open .. 1 closed)."""
        return float(np.clip(1.0 - self.opening_width / MAX_OPENING_WIDTH, 0.0, 1.0))

    def pose_in_base(self, base: "BaseFrame") -> tuple[np.ndarray, np.ndarray]:
        """TCP position and quaternion (x, y, z, w) in base_link."""
        rotation = base.rotation.T @ euler_to_matrix(self.tcp_euler)
        return base.rotation.T @ (self.tcp_position - base.position), matrix_to_quaternion(rotation)


@dataclass(frozen=True)
class BaseFrame:
    """Pose of the robot base (base_link) in CALVIN's world (the scene's robot_base_position/orientation)."""

    position: np.ndarray
    rotation: np.ndarray


IDENTITY_BASE = BaseFrame(np.zeros(3), np.eye(3))
# Scenes A-D place the robot base alike (calvin_env conf/scene/calvin_scene_*.yaml: robot_base_position, no
# rotation): what a dataset reader needs to express robot_obs in base_link as the calvin backend does.
SCENE_BASE = BaseFrame(np.array([-0.34, -0.46, 0.24]), np.eye(3))


def command_to_calvin(delta_position: np.ndarray, delta_rotation: np.ndarray, closure: float | None,
                      tcp_euler: np.ndarray, previous_gripper: float = GRIPPER_OPEN,
                      base: BaseFrame = IDENTITY_BASE) -> np.ndarray:
    """A suite command (base_link deltas) as CALVIN's 7-d relative action, clipped to [-1, 1].

    ``closure`` None (the suite's GRIPPER_UNCHANGED) repeats ``previous_gripper``: CALVIN has no "leave it"."""
    position = base.rotation @ np.asarray(delta_position, dtype=np.float64).reshape(3)
    world_rotvec = base.rotation @ np.asarray(delta_rotation, dtype=np.float64).reshape(3)
    current = euler_to_matrix(tcp_euler)
    target_euler = matrix_to_euler(rotvec_to_matrix(world_rotvec) @ current)
    euler_increment = wrap_angle(target_euler - np.asarray(tcp_euler, dtype=np.float64))
    if not (np.isfinite(position).all() and np.isfinite(euler_increment).all()):
        raise ValueError("command has non-finite values")
    if closure is None:
        gripper = previous_gripper
    else:
        gripper = GRIPPER_CLOSE if closure >= CLOSE_THRESHOLD else GRIPPER_OPEN
    return np.clip(np.concatenate([position / MAX_REL_POS, euler_increment / MAX_REL_ORN, [gripper]]), -1.0, 1.0)


def calvin_to_command(rel_action: np.ndarray, tcp_euler: np.ndarray,
                      base: BaseFrame = IDENTITY_BASE) -> np.ndarray:
    """CALVIN's relative action (e.g. a dataset's rel_actions) as the suite's action layout: (7,) dx, dy, dz
    [m], rotation vector [rad] in base_link, gripper closure (1 closed, 0 open)."""
    action = np.asarray(rel_action, dtype=np.float64).reshape(7)
    euler = np.asarray(tcp_euler, dtype=np.float64)
    world_position = action[0:3] * MAX_REL_POS
    target = euler_to_matrix(euler + action[3:6] * MAX_REL_ORN)
    world_rotvec = matrix_to_rotvec(target @ euler_to_matrix(euler).T)
    closure = 1.0 if action[6] < 0 else 0.0
    return np.concatenate([base.rotation.T @ world_position, base.rotation.T @ world_rotvec, [closure]])
