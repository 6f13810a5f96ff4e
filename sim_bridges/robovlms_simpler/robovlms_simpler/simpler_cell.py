"""SimplerCell: a SimplerEnv env stepped like the twin's KinovaCell, shared by the bridge node and the driver's
``simpler`` backend in one process (every call under ``cell.lock``).

The driver holds a twist (m/s, rad/s in base_link) and a gripper closure; each bridge tick turns the twist held
over the tick into one SimplerEnv action (robovlms_simpler.actions) and steps the env once, so one tick is one
step of the benchmark at its control frequency.

The env is reached through the small EpisodeEnv interface below (reset to an episode of a task's set, step,
close) whose observations are already in the suite's terms; robovlms_simpler.simpler_setup implements it on
ManiSkill2_real2sim and ManiSkill3, and the tests on a small env of their own.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robovlms_simpler.actions import RelativeGripper, absolute_gripper, command_to_simpler
from robovlms_simpler.tasks import RELATIVE_GRIPPER, Episode, Robot


@dataclass(frozen=True)
class Observation:
    """One env observation in the suite's terms."""

    image: np.ndarray  # (H, W, 3) uint8 RGB of the benchmark's camera
    intrinsic: np.ndarray | None  # (3, 3) OpenCV camera matrix, when the env reports it
    tcp_position: np.ndarray  # (3,) m in the robot base frame
    tcp_quaternion: np.ndarray  # (4,) x, y, z, w in the robot base frame
    joints: np.ndarray  # arm joint positions (rad)
    gripper_closure: float  # 0 open .. 1 closed
    success: bool  # the env's info["success"] after the last step (False right after a reset)
    instruction: str  # the env's language instruction for the episode


class EpisodeEnv(Protocol):
    def reset(self, episode: Episode) -> Observation:
        """Build (or reuse) the env the episode needs and reset it to the episode."""

    def step(self, action: np.ndarray) -> Observation:
        """One control step with a 7-d SimplerEnv action."""

    def close(self) -> None:
        """Release the env and its renderer."""


class SimplerCell:
    """The env, the driver's held command, and the episode being run."""

    def __init__(self, env: EpisodeEnv, robot: Robot, rotation: str = "rotvec") -> None:
        self.env, self.robot, self.rotation = env, robot, rotation
        self.lock = threading.RLock()
        self._linear, self._angular = np.zeros(3), np.zeros(3)
        self._closure = 0.0
        self._relative_gripper = RelativeGripper()
        self.episode: Episode | None = None
        self.steps = 0
        self.observation: Observation | None = None

    # --- the driver's side --------------------------------------------------------------------------
    def set_twist(self, linear: np.ndarray, angular: np.ndarray) -> None:
        self._linear, self._angular = np.asarray(linear, float).copy(), np.asarray(angular, float).copy()

    def set_gripper(self, closure: float) -> None:
        self._closure = float(closure)

    # --- the bridge's side --------------------------------------------------------------------------
    def reset_episode(self, episode: Episode) -> Observation:
        """The episode's scene; the held command and the gripper's history are dropped."""
        self.observation = self.env.reset(episode)
        self.episode, self.steps = episode, 0
        self.set_twist(np.zeros(3), np.zeros(3))
        self._closure = self.observation.gripper_closure
        self._relative_gripper.reset()
        return self.observation

    def step(self, period: float) -> np.ndarray:
        """One env step with the twist held over ``period`` seconds; returns the SimplerEnv action sent."""
        if self.robot.gripper == RELATIVE_GRIPPER:
            gripper = self._relative_gripper(self._closure)
        else:
            gripper = absolute_gripper(self._closure)
        action = command_to_simpler(self._linear * period, self._angular * period, gripper, self.rotation)
        self.observation = self.env.step(action)
        self.steps += 1
        return action

    def close(self) -> None:
        self.env.close()
