"""The small interface every arm backend (real Kortex arm, MuJoCo twin) implements."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from robovlms_drivers.kinova.conversions import Frame

JOINT_NAMES = tuple(f"joint_{i}" for i in range(1, 8))
GRIPPER_JOINT_NAME = "robotiq_85_left_knuckle_joint"


class BackendUnavailable(RuntimeError):
    """The backend cannot start (SDK missing, robot unreachable); the message says what to do."""


@dataclass
class ArmState:
    """One feedback sample. Joint angles in rad, gripper knuckle angle in rad (0 open .. ~0.8 closed),
    end-effector pose in base_link (quaternion x, y, z, w); `fault` is empty when healthy."""

    joint_positions: np.ndarray = field(default_factory=lambda: np.zeros(7))
    gripper_position: float = 0.0
    ee_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ee_quaternion: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    fault: str = ""


class ArmBackend(abc.ABC):
    """An arm plus gripper that takes Cartesian velocity commands. Calls come from one thread at a time."""

    name: str = "abstract"

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection and put the arm in a state that accepts twists; raise BackendUnavailable."""

    @abc.abstractmethod
    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        """Command an end-effector twist (linear m/s, angular rad/s) in `frame`, held until the next call."""

    @abc.abstractmethod
    def send_gripper(self, closure: float) -> None:
        """Command the gripper position, 0 open .. 1 closed."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop all arm motion now."""

    @abc.abstractmethod
    def clear_faults(self) -> None:
        """Clear latched controller faults, if any."""

    @abc.abstractmethod
    def read_state(self) -> ArmState:
        """Latest joint, gripper and end-effector feedback."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the arm and release the connection; safe to call twice."""
