"""CalvinCell: a CALVIN env stepped like the twin's KinovaCell, shared by the bridge node and the driver's
``calvin`` backend in one process (every call under ``cell.lock``).

The driver holds a twist (m/s, rad/s in base_link) and a gripper closure; each bridge tick turns the twist
held over the tick into one CALVIN relative action (robovlms_calvin.actions) and steps the env once, so
one tick is one step of CALVIN's protocol. Success is CALVIN's task oracle on ``env.get_info()`` against the
info at the start of the current subtask.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from robovlms_calvin.actions import GRIPPER_OPEN, BaseFrame, RobotObs, command_to_calvin
from robovlms_calvin.sequences import Chain, initial_scene

CAMERA_KEYS = {"static": "rgb_static", "wrist": "rgb_gripper"}


class CalvinCell:
    """The env, the driver's held command, and the subtask being judged."""

    def __init__(self, env: Any, oracle: Any, base: BaseFrame) -> None:
        self.env, self.oracle, self.base = env, oracle, base
        self.lock = threading.RLock()
        self._linear, self._angular = np.zeros(3), np.zeros(3)
        self._closure: float | None = None
        self._gripper = GRIPPER_OPEN
        self.subtask = ""
        self.steps = 0
        self._start_info: dict | None = None
        self._obs = env.get_obs()
        self._info = env.get_info()

    # --- the driver's side --------------------------------------------------------------------------
    def set_twist(self, linear: np.ndarray, angular: np.ndarray) -> None:
        self._linear, self._angular = np.asarray(linear, float).copy(), np.asarray(angular, float).copy()

    def set_gripper(self, closure: float) -> None:
        self._closure = float(closure)

    # --- the bridge's side --------------------------------------------------------------------------
    def step(self, period: float) -> np.ndarray:
        """One env step with the twist held over ``period`` seconds; returns the CALVIN action sent."""
        robot = RobotObs.parse(self._obs["robot_obs"])
        action = command_to_calvin(self._linear * period, self._angular * period, self._closure, robot.tcp_euler,
                                   self._gripper, self.base)
        self._gripper = float(action[6])
        self._obs, _, _, self._info = self.env.step(action)
        self.steps += 1
        return action

    def reset_chain(self, chain: Chain) -> None:
        """The chain's initial scene; the held command is dropped (the arm is somewhere else now)."""
        robot_obs, scene_obs = initial_scene(chain.initial_state)
        self._obs = self.env.reset(robot_obs=robot_obs, scene_obs=scene_obs)
        self._info = self.env.get_info()
        self.set_twist(np.zeros(3), np.zeros(3))
        self._closure, self._gripper = None, GRIPPER_OPEN
        self.subtask, self.steps, self._start_info = "", 0, None

    def start_subtask(self, subtask: str) -> None:
        """Judge ``subtask`` from the current state on (CALVIN: start_info = env.get_info())."""
        if subtask not in self.oracle.tasks:
            raise ValueError(f"unknown CALVIN subtask {subtask!r}")
        self.subtask, self.steps = subtask, 0
        self._start_info = self.env.get_info()

    def success(self) -> bool:
        if not self.subtask or self._start_info is None:
            return False
        return bool(self.oracle.get_task_info_for_set(self._start_info, self._info, {self.subtask}))

    # --- observations -------------------------------------------------------------------------------
    def image(self, camera: str) -> np.ndarray:
        return self._obs["rgb_obs"][CAMERA_KEYS[camera]]

    def robot(self) -> RobotObs:
        return RobotObs.parse(self._obs["robot_obs"])

    def close(self) -> None:
        self.env.close()
