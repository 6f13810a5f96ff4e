"""Scripted experts: waypoint controllers on privileged state that emit policy-scale actions.

Each expert is a generator yielding ``(delta_position, delta_rotation, gripper)`` per control period,
clamped to the scale a policy emits (<= 3 cm and <= 0.2 rad per step), so demonstrations are
reproducible by a learned policy.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from robovlms_twin.kinematics import TOOL_DOWN, matrix_to_rotvec, yaw_matrix
from robovlms_twin.model_builder import BLOCK_HALF
from robovlms_twin.scene import SceneState

Action = tuple[np.ndarray, np.ndarray, float]
PoseFn = Callable[[], tuple[np.ndarray, np.ndarray]]  # current TCP position and rotation matrix

MAX_STEP = 0.03  # m per control period
MAX_TURN = 0.2  # rad per control period
# Closed fingers span +-0.011 m along the tool x axis and +-0.014 m along its y axis; the pads reach
# 0.014 m below the TCP. Contact offsets below are derived from these.
PAD_X = 0.011
PAD_Y_CLOSED = 0.014
PAD_BELOW_TCP = 0.014
CLEARANCE = 0.006
SAFE_Z = 0.16


def _clamp(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)


class Waypoints:
    """Shared motion primitives for one episode's expert."""

    def __init__(self, pose: PoseFn):
        self.pose = pose

    def move(self, target, gripper: float, yaw: float = 0.0, tolerance: float = 0.005,
             max_steps: int = 40) -> Iterator[Action]:
        """Go to ``target`` (TCP, world frame) with the tool pointing down at ``yaw``."""
        target = np.asarray(target, dtype=float)
        goal = yaw_matrix(yaw) @ TOOL_DOWN
        for _ in range(max_steps):
            pos, mat = self.pose()
            error = target - pos
            turn = matrix_to_rotvec(goal @ mat.T)
            if np.linalg.norm(error) < tolerance and np.linalg.norm(turn) < 0.03:
                return
            yield _clamp(error, MAX_STEP), _clamp(turn, MAX_TURN), gripper

    def wait(self, gripper: float, steps: int) -> Iterator[Action]:
        for _ in range(steps):
            yield np.zeros(3), np.zeros(3), gripper

    def lift_off(self, gripper: float, yaw: float = 0.0) -> Iterator[Action]:
        """Straight up to the safe height, then hold still forever."""
        pos, _ = self.pose()
        yield from self.move([pos[0], pos[1], SAFE_Z], gripper, yaw)
        while True:
            yield np.zeros(3), np.zeros(3), gripper


def _grasp_yaw(block_yaw: float) -> float:
    """Closest yaw (mod 90 deg, the cube's symmetry) that puts the fingers on two opposite faces."""
    return float((block_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def drawer_expert(scene: SceneState, w: Waypoints, opening: bool) -> Iterator[Action]:
    """Push the drawer's handle post from behind (open) or from the front (close) with closed fingers."""
    handle = scene.handle_position()
    side = 1.0 if opening else -1.0
    x = handle[0] + side * (0.012 + PAD_X + CLEARANCE)
    z = handle[2] + PAD_BELOW_TCP - 0.01
    yield from w.move([x, handle[1], SAFE_Z + 0.04], 1.0)
    yield from w.move([x, handle[1], z], 1.0, tolerance=0.004)
    travel = -0.15 if opening else scene.drawer_opening() - 0.005
    yield from w.move([x + travel, handle[1], z], 1.0, max_steps=15)
    yield from w.lift_off(1.0)


def button_expert(scene: SceneState, w: Waypoints) -> Iterator[Action]:
    cap = scene.body_position("button")
    cap_top = cap[2] + 0.02
    yield from w.move([cap[0], cap[1], cap_top + 0.08], 1.0)
    yield from w.move([cap[0], cap[1], cap_top + PAD_BELOW_TCP + 0.01], 1.0, tolerance=0.004)
    yield from w.move([cap[0], cap[1], cap_top + PAD_BELOW_TCP - 0.013], 1.0, max_steps=8)
    yield from w.lift_off(1.0)


def lift_expert(scene: SceneState, w: Waypoints, color: str) -> Iterator[Action]:
    body = f"{color}_block"
    block = scene.body_position(body)
    yaw = _grasp_yaw(scene.body_yaw(body))
    yield from w.move([block[0], block[1], 0.12], 0.0, yaw)
    block = scene.body_position(body)
    yield from w.move([block[0], block[1], BLOCK_HALF + 0.002], 0.0, yaw, tolerance=0.004)
    yield from w.wait(1.0, 4)
    yield from w.lift_off(1.0, yaw)


def push_left_expert(scene: SceneState, w: Waypoints, color: str) -> Iterator[Action]:
    block = scene.body_position(f"{color}_block")
    y_start = block[1] - (BLOCK_HALF * np.sqrt(2) + PAD_Y_CLOSED + CLEARANCE)
    z = 0.028
    yield from w.move([block[0], y_start, 0.12], 1.0)
    yield from w.move([block[0], y_start, z], 1.0, tolerance=0.004)
    yield from w.move([block[0], y_start + 0.10, z], 1.0, max_steps=20)
    yield from w.lift_off(1.0)


def slider_expert(scene: SceneState, w: Waypoints, direction: float) -> Iterator[Action]:
    """Push the slider knob along the rail; ``direction`` +1 = robot's left (+y), -1 = right."""
    knob = scene.body_position("slider")
    rail_y = knob[1] - scene.slider_position()
    y_start = knob[1] - direction * (0.015 + PAD_Y_CLOSED + CLEARANCE)
    z = 0.05
    yield from w.move([knob[0], y_start, 0.12], 1.0)
    yield from w.move([knob[0], y_start, z], 1.0, tolerance=0.004)
    y_goal = rail_y + direction * 0.085 - direction * (0.015 + PAD_Y_CLOSED)
    yield from w.move([knob[0], y_goal, z], 1.0, max_steps=20)
    yield from w.lift_off(1.0)


def make_expert(task: str, scene: SceneState, pose: PoseFn) -> Iterator[Action]:
    """The scripted expert for ``task`` (a fresh generator per episode)."""
    w = Waypoints(pose)
    experts = {
        "open_drawer": lambda: drawer_expert(scene, w, opening=True),
        "close_drawer": lambda: drawer_expert(scene, w, opening=False),
        "press_button": lambda: button_expert(scene, w),
        "lift_red_block": lambda: lift_expert(scene, w, "red"),
        "push_blue_block_left": lambda: push_left_expert(scene, w, "blue"),
        "move_slider_right": lambda: slider_expert(scene, w, -1.0),
        "move_slider_left": lambda: slider_expert(scene, w, 1.0),
    }
    return experts[task]()
