"""Episodes on the MuJoCo twin without DDS: what the ROS graph would record, produced directly.

One control period per step, as in ``make demo``: the cameras show the state after the latest physics step
(rendered at ``render_size`` like the twin bridge, then resized exactly as the policy resizes, see
``vla.policy.resize_rgb``), the robot state is what the driver publishes (``vla.proprio``), and the action
goes through the driver's own safety layer into the twin (``robovlms_twin.driver_loop``: clamps, workspace box,
gripper hysteresis, physics in lockstep with the driver's ticks). Every step is labelled with the scripted
expert's action for the state the cell is in, whoever acts (DAgger relabelling), so noisy demonstrations and
policy rollouts become supervision.

A commander decides what is executed: the expert with injected noise (DART: the executed action is
perturbed, the label stays the expert's correction), or a policy with the policy node's timing (the chunk
computed at tick t is first used at tick t + 1, see node/inference_worker.py, so the direct path sees the
same one-tick latency as the ROS graph).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from robovlms_policy.runtime.chunk_strategies import make_strategy
from robovlms_policy.vla.policy import resize_rgb
from robovlms_policy.vla.proprio import ee_pose_gripper
from robovlms_twin.driver_loop import DriverLoop
from robovlms_twin.experts import MAX_STEP, MAX_TURN

from .episodes import Episode

CAMERAS = ("static", "wrist")
Action = tuple[np.ndarray, np.ndarray, float]


@dataclass(frozen=True)
class RolloutSettings:
    render_size: int = 224  # the twin bridge's image_size in make demo
    store_size: int = 64  # frames are kept at the checkpoint's input size
    max_steps: int = 80
    steps_after_success: int = 5  # recording goes on a little past success (the expert lifts off and holds)
    # In the ROS graph the camera timer runs at its own phase to physics, so a frame shows the latest physics
    # step or the one before; each episode draws which, with this probability of the older one.
    frame_lag_probability: float = 0.0


@dataclass(frozen=True)
class Observation:
    images: dict[str, np.ndarray]  # render_size RGB per camera
    proprio: np.ndarray  # ee_pose_gripper


class Commander(Protocol):
    """Chooses the executed action each tick; None holds the arm (zero motion, gripper unchanged)."""

    def reset(self, instruction: str, rng: np.random.Generator) -> None: ...

    def act(self, tick: int, observation: Observation, label: Action) -> Action | None: ...


@dataclass
class NoisyExpert:
    """DART-style demonstrations: the expert's action plus per-episode Gaussian noise (a standard deviation
    drawn per episode up to ``position_sigma`` / ``rotation_sigma``) and occasional pushes of a few steps in
    a random direction, so the data holds the deviations a policy makes and the expert's way back."""

    position_sigma: float = 0.0
    rotation_sigma: float = 0.0
    push_probability: float = 0.0  # per step, chance that a push starts
    push_speed: float = 0.015  # m per step during a push
    _rng: np.random.Generator = field(default=None, repr=False)
    _sigma: tuple[float, float] = (0.0, 0.0)
    _push: tuple[int, np.ndarray] = (0, np.zeros(3))

    def reset(self, instruction: str, rng: np.random.Generator) -> None:
        self._rng = rng
        self._sigma = (rng.uniform(0, self.position_sigma), rng.uniform(0, self.rotation_sigma))
        self._push = (0, np.zeros(3))

    def act(self, tick: int, observation: Observation, label: Action) -> Action:
        dp, dr, gripper = label
        rng = self._rng
        dp = dp + rng.normal(0.0, self._sigma[0], 3)
        dr = dr + rng.normal(0.0, self._sigma[1], 3)
        steps, direction = self._push
        if steps == 0 and rng.random() < self.push_probability:
            direction = rng.normal(size=3)
            steps, direction = int(rng.integers(2, 5)), direction / np.linalg.norm(direction) * self.push_speed
        if steps > 0:
            dp, self._push = dp + direction, (steps - 1, direction)
        return _clamp(dp, MAX_STEP), _clamp(dr, MAX_TURN), gripper


class PolicyCommander:
    """A VLA policy acting with the policy node's timing and chunk execution strategy."""

    def __init__(self, policy, strategy: str = "replan", **strategy_params) -> None:
        self.policy = policy
        self._strategy = make_strategy(strategy, **strategy_params)

    def reset(self, instruction: str, rng: np.random.Generator) -> None:
        self.policy.reset(instruction)
        self._strategy.reset()

    def act(self, tick: int, observation: Observation, label: Action) -> Action | None:
        action = self._strategy.action_for(tick)  # chunks up to the previous tick, as in the node
        output = self.policy.step(observation.images, observation.proprio)
        self._strategy.submit(output, tick)
        if action is None:
            return None
        return np.asarray(action.arm[:3]), np.asarray(action.arm[3:]), float(action.gripper)


def _clamp(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)


def observe(cell) -> Observation:
    """Both cameras and the robot state, as the ROS graph publishes them."""
    position, quaternion = cell.ee_pose()
    proprio = ee_pose_gripper(position, quaternion, cell.gripper_joint_position())
    return Observation({camera: cell.render(camera) for camera in CAMERAS}, proprio)


@dataclass
class RolloutResult:
    episode: Episode
    success: bool
    steps_to_success: int | None  # control steps until the oracle first held


def run_episode(loop: DriverLoop, task: str, seed: int, commander: Commander, settings: RolloutSettings,
                variation: str = "default", rng: np.random.Generator | None = None) -> RolloutResult:
    """Reset the twin to (task, seed, variation) and record one episode under ``commander``."""
    cell = loop.cell
    spec = cell.reset(task, seed, variation)
    rng = rng if rng is not None else np.random.default_rng(seed)
    commander.reset(spec.instruction, rng)
    frames: dict[str, list[np.ndarray]] = {camera: [] for camera in CAMERAS}
    labels, proprio = [], []
    success_step = None
    lagged = rng.random() < settings.frame_lag_probability
    previous_images = None
    for tick in range(settings.max_steps):
        observation = observe(cell)
        if lagged:  # what the cameras published one physics step earlier (the first step has no earlier one)
            observation, previous_images = Observation(previous_images or observation.images,
                                                       observation.proprio), observation.images
        label = cell.expert_action()
        for camera in CAMERAS:
            frames[camera].append(resize_rgb(observation.images[camera], settings.store_size))
        proprio.append(observation.proprio)
        labels.append(np.concatenate([label[0], label[1], [label[2]]]))
        executed = commander.act(tick, observation, label)
        if executed is None:
            loop.hold()
        else:
            loop.act(*executed)
        if success_step is None and cell.success():
            success_step = tick + 1
        if success_step is not None and tick + 1 >= success_step + settings.steps_after_success:
            break
    episode = Episode(trial_dir=Path(f"twin/{task}/{seed}"), instruction=spec.instruction, task=task,
                      success=success_step is not None,
                      frames={camera: np.stack(stack) for camera, stack in frames.items()},
                      actions=np.stack(labels), proprio=np.stack(proprio),
                      info={"task": task, "seed": seed, "variation": variation, "instruction": spec.instruction,
                            "steps_to_success": success_step})
    return RolloutResult(episode, success_step is not None, success_step)
