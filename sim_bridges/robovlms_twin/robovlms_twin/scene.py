"""Named, privileged access to the task objects' state (read and set) for oracles, experts and resets."""
from __future__ import annotations

import mujoco
import numpy as np

from robovlms_twin.model_builder import BLOCK_HALF, DISTRACTOR_PARK, LIGHT_OFF_RGBA, LIGHT_ON_RGBA

BUTTON_PRESSED = 0.008  # m of cap travel that switches the light on


class SceneState:
    """Reads and writes object state on one (model, data) pair; never steps physics."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData):
        self.model = model
        self.data = data
        self.light_on = False
        # Object poses at the start of the episode, for oracles that measure displacement.
        self.initial: dict[str, np.ndarray] = {}
        self._light_geom = model.geom("button_light").id

    # --- joints of articulated objects -------------------------------------------------------
    def _joint_value(self, joint: str) -> float:
        return float(self.data.qpos[self.model.joint(joint).qposadr[0]])

    def _set_joint_value(self, joint: str, value: float) -> None:
        j = self.model.joint(joint)
        self.data.qpos[j.qposadr[0]] = value
        self.data.qvel[j.dofadr[0]] = 0.0

    def drawer_opening(self) -> float:
        """How far the drawer is pulled out (m, 0 = closed)."""
        return self._joint_value("drawer_slide")

    def set_drawer_opening(self, value: float) -> None:
        self._set_joint_value("drawer_slide", value)

    def button_depression(self) -> float:
        """How far the button cap is pushed in (m)."""
        return self._joint_value("button_press")

    def set_button_depression(self, value: float) -> None:
        self._set_joint_value("button_press", value)

    def slider_position(self) -> float:
        """Slider knob offset along its rail (m, + = robot's left)."""
        return self._joint_value("slider_slide")

    def set_slider_position(self, value: float) -> None:
        self._set_joint_value("slider_slide", value)

    # --- free bodies ---------------------------------------------------------------------------
    def body_position(self, body: str) -> np.ndarray:
        """World position of a body (valid after mj_forward / mj_step)."""
        return self.data.xpos[self.model.body(body).id].copy()

    def body_yaw(self, body: str) -> float:
        w, x, y, z = self.data.xquat[self.model.body(body).id]
        return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))

    def set_free_body(self, body: str, xy: np.ndarray, yaw: float, z: float = BLOCK_HALF) -> None:
        """Place a free-jointed body at rest with the given planar position and yaw."""
        j = self.model.joint(body)
        adr, dof = j.qposadr[0], j.dofadr[0]
        self.data.qpos[adr:adr + 3] = (xy[0], xy[1], z)
        self.data.qpos[adr + 3:adr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        self.data.qvel[dof:dof + 6] = 0.0

    def park_distractor(self, index: int) -> None:
        self.set_free_body(f"distractor_{index}", DISTRACTOR_PARK[:2] + (0.1 * index, 0.0), 0.0,
                           z=DISTRACTOR_PARK[2])

    def set_fixture_position(self, body: str, xy: np.ndarray) -> None:
        """Move a static fixture (cabinet, button base, slider rail) on the table."""
        self.model.body_pos[self.model.body(body).id][:2] = xy

    def handle_position(self) -> np.ndarray:
        return self.data.geom_xpos[self.model.geom("drawer_handle").id].copy()

    # --- the button's lamp ---------------------------------------------------------------------
    def update_light(self) -> None:
        """Latch the lamp on once the button has been pressed far enough (like the real cell's relay)."""
        if not self.light_on and self.button_depression() >= BUTTON_PRESSED:
            self.light_on = True
        self.model.geom_rgba[self._light_geom] = LIGHT_ON_RGBA if self.light_on else LIGHT_OFF_RGBA

    def reset_light(self) -> None:
        self.light_on = False
        self.model.geom_rgba[self._light_geom] = LIGHT_OFF_RGBA

    def geom_rgba(self, geom: str) -> np.ndarray:
        return self.model.geom_rgba[self.model.geom(geom).id]
