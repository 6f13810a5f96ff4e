"""A small env with calvin_env's interface (reset/step/get_obs/get_info, cameras, a Tasks-like oracle), for the
protocol and bridge tests: CI has no calvin_env. Its TCP integrates CALVIN actions exactly (0.02 m, 0.05 rad
per unit) and a subtask "succeeds" after a set number of steps."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robovlms_calvin.sequences import ROBOT_OBS_START, TASK_NAMES


@dataclass
class Camera:
    name: str
    width: int
    height: int
    fov: float


class Robot:
    base_position = (-0.34, -0.46, 0.24)
    base_orientation = (0.0, 0.0, 0.0, 1.0)


class SmallCalvinEnv:
    def __init__(self) -> None:
        self.cameras = [Camera("static", 200, 200, 10.0), Camera("gripper", 84, 84, 75.0)]
        self.robot = Robot()
        self.actions: list[np.ndarray] = []
        self.resets: list[tuple[np.ndarray, np.ndarray]] = []
        self.robot_obs = ROBOT_OBS_START.copy()
        self.clock = 0
        self.closed = False

    def get_obs(self) -> dict:
        shade = np.uint8(self.clock % 256)
        return {"rgb_obs": {"rgb_static": np.full((200, 200, 3), shade, np.uint8),
                            "rgb_gripper": np.full((84, 84, 3), shade, np.uint8)},
                "robot_obs": self.robot_obs.copy(), "scene_obs": np.zeros(24)}

    def get_info(self) -> dict:
        return {"clock": self.clock}

    def reset(self, robot_obs=None, scene_obs=None) -> dict:
        self.resets.append((np.array(robot_obs), np.array(scene_obs)))
        self.robot_obs = np.array(robot_obs, float)
        return self.get_obs()

    def step(self, action):
        action = np.asarray(action, float)
        assert action.shape == (7,) and np.all(np.abs(action) <= 1.0) and action[6] in (-1.0, 1.0)
        self.actions.append(action)
        self.robot_obs[0:3] += action[0:3] * 0.02
        self.robot_obs[3:6] += action[3:6] * 0.05
        self.robot_obs[14] = action[6]
        self.clock += 1
        return self.get_obs(), 0, False, self.get_info()

    def close(self) -> None:
        self.closed = True


class StepCountOracle:
    """Task oracle: ``subtask`` succeeds once ``steps_to_success[subtask]`` steps have passed since its start
    (never when absent), like calvin_env's Tasks.get_task_info_for_set on start/end infos."""

    def __init__(self, steps_to_success: dict[str, int]) -> None:
        self.tasks = {name: None for name in TASK_NAMES}
        self.steps_to_success = steps_to_success

    def get_task_info_for_set(self, start_info: dict, end_info: dict, task_filter: set) -> set:
        return {t for t in task_filter
                if t in self.steps_to_success and end_info["clock"] - start_info["clock"] >= self.steps_to_success[t]}


INSTRUCTIONS = {name: f"please {name.replace('_', ' ')}" for name in TASK_NAMES}
