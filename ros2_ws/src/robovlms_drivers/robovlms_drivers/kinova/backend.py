"""The small interface every arm backend implements, and how the driver finds backends by name.

Backends are plug-ins: entry points of the group ``robovlms_drivers.backends`` (name -> ArmBackend class).
This package registers ``kortex`` (the real arm); the twin package registers ``sim``, so the driver itself
never imports a simulator.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import Enum
from importlib.metadata import entry_points

import numpy as np

BACKEND_GROUP = "robovlms_drivers.backends"


class Frame(str, Enum):
    """Reference frame of a twist sent to a backend."""

    BASE = "base"
    TOOL = "tool"


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
    """An arm plus gripper that takes Cartesian velocity commands. Calls come from one thread at a time.

    ``from_parameters`` builds a backend from the driver's parameters (robovlms_drivers.kinova.driver_node.
    DriverParams); it must not connect yet."""

    name: str = "abstract"

    @classmethod
    @abc.abstractmethod
    def from_parameters(cls, params) -> "ArmBackend":
        """A backend configured from the driver's parameters, not yet connected."""

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


def backend_names() -> list[str]:
    """Names of the installed backends."""
    return sorted(ep.name for ep in entry_points(group=BACKEND_GROUP))


def load_backend(name: str) -> type[ArmBackend]:
    """The backend class registered as ``name``; BackendUnavailable says which ones are installed."""
    found = [ep for ep in entry_points(group=BACKEND_GROUP) if ep.name == name]
    if not found:
        raise BackendUnavailable(f"no arm backend named {name!r} is installed; installed: {backend_names()} "
                                 "(the 'sim' backend comes with the robovlms_twin package)")
    try:
        backend = found[0].load()
    except ImportError as err:
        raise BackendUnavailable(f"backend {name!r} cannot be loaded: {err}") from err
    if not (isinstance(backend, type) and issubclass(backend, ArmBackend)):
        raise BackendUnavailable(f"backend {name!r} ({found[0].value}) is not an ArmBackend")
    return backend
