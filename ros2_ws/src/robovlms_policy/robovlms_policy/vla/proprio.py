"""Proprioception: the robot state a policy may see beside its cameras, in one fixed layout.

Layout ``ee_pose_gripper`` (10 values), built from what the driver publishes (``ee_pose`` and the Robotiq
knuckle joint of ``joint_states``) and what the trial recorder stores in every bag:

    [0:3]  TCP position in base_link (m)
    [3:9]  TCP orientation as the first two columns of its rotation matrix (the continuous 6-D rotation
           representation; quaternions flip sign and Euler angles wrap, which a regressor cannot follow)
    [9]    gripper closure from the knuckle angle, 0 open .. 1 closed

A checkpoint stores the layout name and per-dimension mean / std; ``ProprioNormalizer`` applies them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robovlms_io.names import KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_to_matrix

EE_POSE_GRIPPER = "ee_pose_gripper"
PROPRIO_LAYOUTS = {EE_POSE_GRIPPER: 10}
TCP_POSITION = slice(0, 3)  # where the layout keeps the TCP position
MIN_STD = 1e-3  # a (nearly) constant dimension is centred, not blown up


def ee_pose_gripper(position: Any, quaternion_xyzw: Any, knuckle_rad: float) -> np.ndarray:
    """The ``ee_pose_gripper`` vector; ValueError on non-finite input."""
    position = np.asarray(position, dtype=np.float64).reshape(3)
    rotation = quaternion_to_matrix(quaternion_xyzw)
    closure = float(np.clip(float(knuckle_rad) / KNUCKLE_CLOSED_RAD, 0.0, 1.0))
    vector = np.concatenate([position, rotation[:, 0], rotation[:, 1], [closure]])
    if not np.isfinite(vector).all():
        raise ValueError("proprioception has non-finite values")
    return vector


@dataclass
class ProprioNormalizer:
    """Standardises proprioception with the training data's mean and std (std floored at MIN_STD)."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.maximum(np.asarray(self.std, dtype=np.float64), MIN_STD)
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape or not np.isfinite(self.mean).all() \
                or not np.isfinite(self.std).all():
            raise ValueError(f"proprio statistics need finite mean and std of one length, got {self.mean.shape} "
                             f"and {self.std.shape}")

    @classmethod
    def from_data(cls, proprio: np.ndarray) -> "ProprioNormalizer":
        data = np.asarray(proprio, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 1 or not np.isfinite(data).all():
            raise ValueError(f"proprio data must be finite (N >= 1, D), got {data.shape}")
        return cls(data.mean(axis=0), data.std(axis=0))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProprioNormalizer":
        missing = {"mean", "std"} - set(data)
        if missing:
            raise ValueError(f"proprio statistics are missing keys {sorted(missing)}")
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    def normalize(self, proprio: np.ndarray) -> np.ndarray:
        return (np.asarray(proprio, dtype=np.float64) - self.mean) / self.std
