"""Damped-least-squares differential IK on a MuJoCo site (rotation maths from robovlms_io.rotations)."""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robovlms_io.rotations import matrix_to_rotvec


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
