"""A small env with the bridge's EpisodeEnv interface, for the protocol and bridge tests: CI has neither SimplerEnv
nor a GPU. Its TCP integrates the actions exactly (metres and axis-angle in the base frame), its gripper follows
the robot's convention, and an episode "succeeds" once the TCP has risen ``lift`` metres."""
from __future__ import annotations

import numpy as np

from robovlms_io.rotations import matrix_to_quaternion, rotvec_to_matrix
from robovlms_simpler.simpler_cell import Observation
from robovlms_simpler.tasks import ROBOTS, TASKS, Episode


class SmallSimplerEnv:
    def __init__(self, lift: float = 0.02) -> None:
        self.lift = lift
        self.actions: list[np.ndarray] = []
        self.resets: list[Episode] = []
        self.builds: list[tuple] = []
        self.closed = False
        self._key = None

    def reset(self, episode: Episode) -> Observation:
        key = (TASKS[episode.task].env_id, episode.build)
        if key != self._key:  # as RealToSimEnv: a new env when the build arguments change
            self.builds.append(key)
            self._key = key
        self.resets.append(episode)
        self.robot = ROBOTS[TASKS[episode.task].robot]
        self.position, self.rotation, self.closure = np.array([0.4, 0.0, 0.2]), np.eye(3), 0.0
        self.start_z = self.position[2]
        return self._observation(False)

    def step(self, action: np.ndarray) -> Observation:
        action = np.asarray(action, float)
        assert action.shape == (7,) and np.isfinite(action).all()
        self.actions.append(action)
        self.position = self.position + action[:3]
        self.rotation = rotvec_to_matrix(action[3:6]) @ self.rotation
        if self.robot.gripper == "relative":
            self.closure = float(np.clip(self.closure + 0.2 * action[6], 0.0, 1.0))
        else:
            assert action[6] in (-1.0, 1.0)
            self.closure = 1.0 if action[6] < 0 else 0.0
        return self._observation(self.position[2] - self.start_z >= self.lift)

    def _observation(self, success: bool) -> Observation:
        shade = np.uint8(len(self.actions) % 256)
        height = 512 if self.robot.name == "google_robot" else 480
        return Observation(np.full((height, 640, 3), shade, np.uint8), np.array([[425.0, 0, 320], [0, 425.0, 256],
                                                                                [0, 0, 1]]),
                           self.position.copy(), matrix_to_quaternion(self.rotation), np.zeros(self.robot.arm_joints),
                           self.closure, success, f"do {self.resets[-1].task}")

    def close(self) -> None:
        self.closed = True
