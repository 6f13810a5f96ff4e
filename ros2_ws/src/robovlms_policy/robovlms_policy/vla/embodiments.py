"""Per-embodiment action conventions, kept in one place.

Every dataset stores a 7-D end-effector action: 6 arm dimensions (translation xyz, rotation xyz)
followed by one gripper value. Datasets disagree on two things, both captured here:

* the unit of the arm dimensions (``arm_scale`` converts one dataset unit to metres / radians per
  control step), and
* which gripper value means open and which means closed.

Internally the policy always works with a gripper *closure* in [0, 1] (0 open, 1 closed), the same
convention as ``robovlms_msgs/EndEffectorCommand.gripper``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ARM_DIMS = 6


@dataclass(frozen=True)
class Embodiment:
    """Conventions of one robot / dataset.

    Attributes:
        name: registry key, e.g. ``"calvin"``.
        gripper_open_value: dataset gripper value that means fully open.
        gripper_closed_value: dataset gripper value that means fully closed.
        arm_scale: metres (first 3) / radians (last 3) per unit of the dataset's arm action.
        description: where the convention comes from.
    """

    name: str
    gripper_open_value: float
    gripper_closed_value: float
    arm_scale: tuple[float, ...]
    description: str

    def __post_init__(self) -> None:
        if len(self.arm_scale) != ARM_DIMS:
            raise ValueError(f"embodiment {self.name!r}: arm_scale needs {ARM_DIMS} values, got {len(self.arm_scale)}")
        if not all(math.isfinite(s) and s > 0 for s in self.arm_scale):
            raise ValueError(f"embodiment {self.name!r}: arm_scale must be finite and > 0, got {self.arm_scale}")
        values = (self.gripper_open_value, self.gripper_closed_value)
        if not all(math.isfinite(v) for v in values) or values[0] == values[1]:
            raise ValueError(
                f"embodiment {self.name!r}: gripper open/closed values must be finite and differ, got {values}"
            )


EMBODIMENTS: dict[str, Embodiment] = {
    e.name: e
    for e in (
        Embodiment(
            name="calvin",
            gripper_open_value=1.0,
            gripper_closed_value=-1.0,
            # CALVIN rel_actions are the per-step EE displacement multiplied by 50 (position) and 20
            # (orientation, euler) then clipped to [-1, 1]; one unit is therefore 0.02 m / 0.05 rad.
            arm_scale=(0.02, 0.02, 0.02, 0.05, 0.05, 0.05),
            description="CALVIN rel_actions; gripper -1 = close, +1 = open (source: mees/calvin dataset docs).",
        ),
        Embodiment(
            name="bridge",
            gripper_open_value=1.0,
            gripper_closed_value=0.0,
            # Bridge V2 actions are already metres / radians per step (WidowX, 5 Hz).
            arm_scale=(1.0,) * 6,
            description="Bridge V2 as loaded by Octo/OpenVLA; gripper 1 = open, 0 = closed "
            "(source: octo data_utils binarize_gripper_actions).",
        ),
        Embodiment(
            name="google_robot",
            gripper_open_value=-1.0,
            gripper_closed_value=1.0,
            # RT-1 (fractal) world_vector / rotation_delta are metres / radians per step (3 Hz).
            arm_scale=(1.0,) * 6,
            description="RT-1 fractal gripper_closedness_action; +1 = close, -1 = open, as commanded in "
            "SimplerEnv (source: octo rel2abs_gripper_actions). The raw data is a relative command "
            "(0 = no change); convert it to absolute before computing statistics.",
        ),
        Embodiment(
            name="kinova",
            gripper_open_value=0.0,
            gripper_closed_value=1.0,
            # Our own recordings store metres / radians per control period directly.
            arm_scale=(1.0,) * 6,
            description="Kinova Gen3 + Robotiq 2F-85 (this project); gripper 0 = open, 1 = closed like the "
            "Robotiq position command and EndEffectorCommand.gripper.",
        ),
    )
}


def get_embodiment(name: str) -> Embodiment:
    """The registered embodiment called ``name``; KeyError listing the known names otherwise."""
    try:
        return EMBODIMENTS[name]
    except KeyError:
        raise KeyError(f"unknown embodiment {name!r}; known: {sorted(EMBODIMENTS)}") from None


def _finite(values: np.ndarray | float, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or inf")
    return array


def gripper_to_closure(emb: Embodiment, values: np.ndarray | float) -> np.ndarray:
    """Dataset gripper values -> closure in [0, 1] (0 open, 1 closed); values beyond the ends clip."""
    array = _finite(values, f"{emb.name} gripper values")
    closure = (array - emb.gripper_open_value) / (emb.gripper_closed_value - emb.gripper_open_value)
    return np.clip(closure, 0.0, 1.0)


def closure_to_gripper(emb: Embodiment, closure: np.ndarray | float) -> np.ndarray:
    """Closure in [0, 1] -> dataset gripper values (linear; closure outside [0, 1] is clipped first)."""
    array = np.clip(_finite(closure, "gripper closure"), 0.0, 1.0)
    return emb.gripper_open_value + array * (emb.gripper_closed_value - emb.gripper_open_value)


def arm_to_command_units(emb: Embodiment, arm: np.ndarray) -> np.ndarray:
    """Dataset arm actions (..., 6) -> metres / radians per control period (what EndEffectorCommand carries)."""
    return np.asarray(arm, dtype=np.float64) * np.asarray(emb.arm_scale)


def command_to_dataset_units(emb: Embodiment, actions: np.ndarray) -> np.ndarray:
    """Commanded actions (..., 7: metres / radians per period, closure) -> the embodiment's dataset units;
    the inverse of :func:`arm_to_command_units` and :func:`gripper_to_closure` (recordings -> training data)."""
    array = _finite(actions, f"{emb.name} commanded actions")
    arm = array[..., :ARM_DIMS] / np.asarray(emb.arm_scale)
    gripper = closure_to_gripper(emb, array[..., ARM_DIMS])
    return np.concatenate([arm, gripper[..., None]], axis=-1)
