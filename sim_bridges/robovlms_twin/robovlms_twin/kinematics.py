"""Rotation helpers and damped-least-squares differential IK on a MuJoCo site."""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation vector (axis * angle, rad) -> 3x3 matrix."""
    rotvec = np.asarray(rotvec, dtype=float)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> rotation vector (via MuJoCo's quaternion conversion, robust near pi)."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(matrix, dtype=float).ravel())
    rotvec = np.empty(3)
    mujoco.mju_quat2Vel(rotvec, quat, 1.0)
    return rotvec


def matrix_to_quat_xyzw(matrix: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion in ROS order (x, y, z, w) with w >= 0."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(matrix, dtype=float).ravel())
    if quat[0] < 0:
        quat = -quat
    return np.array([quat[1], quat[2], quat[3], quat[0]])


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the world z axis."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# Tool pointing straight down, fingers closing along world y: the nominal grasp orientation.
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])


@dataclass
class IKConfig:
    """Damped least squares settings."""

    damping: float = 0.03  # lambda: keeps steps bounded near singularities
    nullspace_gain: float = 0.5  # pull towards the rest posture inside the Jacobian's null space
    max_joint_step: float = 0.04  # rad per IK update (about 4 rad/s at 100 Hz)
    rotation_weight: float = 0.5  # metres per radian when mixing position and orientation errors


class DifferentialIK:
    """One damped-least-squares step towards a site pose, evaluated on a kinematics-only MjData.

    Working on a separate MjData (the commanded configuration, not the simulated one) keeps the IK
    exact and independent of contact forces; joint servos then track the commanded configuration.
    """

    def __init__(self, model: mujoco.MjModel, site: str, joints: tuple[str, ...], config: IKConfig | None = None):
        self.model = model
        self.config = config or IKConfig()
        self.data = mujoco.MjData(model)
        self.site_id = model.site(site).id
        self.qpos_idx = np.array([model.joint(j).qposadr[0] for j in joints])
        self.dof_idx = np.array([model.joint(j).dofadr[0] for j in joints])
        limited = np.array([model.joint(j).limited[0] for j in joints], dtype=bool)
        ranges = np.array([model.joint(j).range for j in joints])
        self.lower = np.where(limited, ranges[:, 0], -np.inf)
        self.upper = np.where(limited, ranges[:, 1], np.inf)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position and rotation matrix for joint configuration ``q``."""
        self.data.qpos[self.qpos_idx] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site_id].copy(), self.data.site_xmat[self.site_id].reshape(3, 3).copy()

    def step(self, q: np.ndarray, target_pos: np.ndarray, target_mat: np.ndarray,
             rest: np.ndarray | None = None) -> np.ndarray:
        """Return ``q`` moved one DLS step towards the target site pose (joint limits respected)."""
        cfg = self.config
        pos, mat = self.forward(q)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
        jac = np.vstack([self._jacp[:, self.dof_idx], cfg.rotation_weight * self._jacr[:, self.dof_idx]])
        error = np.concatenate([target_pos - pos, cfg.rotation_weight * matrix_to_rotvec(target_mat @ mat.T)])
        gram = jac @ jac.T + cfg.damping**2 * np.eye(6)
        pinv = jac.T @ np.linalg.solve(gram, np.eye(6))
        dq = pinv @ error
        if rest is not None:
            dq += (np.eye(len(q)) - pinv @ jac) @ (cfg.nullspace_gain * (rest - q))
        largest = np.max(np.abs(dq))
        if largest > cfg.max_joint_step:
            dq *= cfg.max_joint_step / largest
        return np.clip(q + dq, self.lower, self.upper)

    def solve(self, q0: np.ndarray, target_pos: np.ndarray, target_mat: np.ndarray,
              rest: np.ndarray | None = None, iterations: int = 300, tolerance: float = 1e-5) -> np.ndarray:
        """Iterate :meth:`step` to convergence (used for initial postures, not in the control loop)."""
        q = np.array(q0, dtype=float)
        for _ in range(iterations):
            q = self.step(q, target_pos, target_mat, rest)
            pos, mat = self.forward(q)
            turn = np.linalg.norm(matrix_to_rotvec(target_mat @ mat.T))
            if np.linalg.norm(target_pos - pos) < tolerance and turn < 1e-4:
                break
        return q
