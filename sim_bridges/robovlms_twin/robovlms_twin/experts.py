"""Reactive scripted experts: privileged-state controllers that emit policy-scale actions.

Each expert is a pure function of the simulator state (object poses, the TCP pose, the fingers) with no
memory of its own, so it can label *any* state: the states of its own noisy demonstrations and the states
a learned policy visits (DAgger relabelling). Actions are ``(delta_position, delta_rotation, gripper)``
per control period, clamped to the scale a policy emits (<= 3 cm and <= 0.2 rad per step).

Every expert follows the same plan: approach a point above the contact, descend when aligned, act
(push, press or grasp and lift), and once the task's oracle holds, lift off to the safe height and stay.
From a state the plan does not expect (gripper closed on nothing, tool below the approach height far
from the object, on the wrong side of it) it first recovers: open the gripper, rise, re-approach.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from robovlms_io.rotations import matrix_to_rotvec, yaw_matrix
from robovlms_twin.kinematics import TOOL_DOWN
from robovlms_twin.model_builder import BLOCK_HALF
from robovlms_twin.scene import SceneState

Action = tuple[np.ndarray, np.ndarray, float]

MAX_STEP = 0.03  # m per control period
MAX_TURN = 0.2  # rad per control period
# Closed fingers span +-0.011 m along the tool x axis and +-0.014 m along its y axis; the pads reach
# 0.014 m below the TCP. Contact offsets below are derived from these.
PAD_X = 0.011
PAD_Y_CLOSED = 0.014
PAD_BELOW_TCP = 0.014
CLEARANCE = 0.006
SAFE_Z = 0.16
APPROACH_Z = 0.12
ALIGNED = 0.006  # m of xy error under which the tool descends onto its contact point
FUNNEL = 0.03  # m of xy error from which the tool stays at the hover height
RISE_FIRST = 0.03  # m below the funnel from which a tool rises before it moves sideways
YAW_ALIGNED = 0.05  # rad
# Finger closure (0 open .. 1 closed) that a 4 cm block stops the fingers at, and the band counted as "on it".
GRASP_CLOSURE_BAND = (0.3, 0.85)
OPEN, CLOSED = 0.0, 1.0


@dataclass(frozen=True)
class ExpertView:
    """What an expert reads: the scene and the robot's own state."""

    scene: SceneState
    tcp_position: np.ndarray
    tcp_matrix: np.ndarray
    finger_closure: float  # measured, 0 open .. 1 closed
    commanded_closure: float  # the gripper command in force


def _clamp(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)


def _move(view: ExpertView, target, gripper: float, yaw: float = 0.0) -> Action:
    """One step towards ``target`` (TCP, base frame) with the tool pointing down at ``yaw``."""
    error = np.asarray(target, dtype=float) - view.tcp_position
    turn = matrix_to_rotvec(yaw_matrix(yaw) @ TOOL_DOWN @ view.tcp_matrix.T)
    return _clamp(error, MAX_STEP), _clamp(turn, MAX_TURN), gripper


def _yaw_error(view: ExpertView, yaw: float) -> float:
    return float(np.linalg.norm(matrix_to_rotvec(yaw_matrix(yaw) @ TOOL_DOWN @ view.tcp_matrix.T)))


def _lift_off(view: ExpertView, gripper: float, yaw: float = 0.0) -> Action:
    """Straight up to the safe height, then hold still (what the expert does once the task is done)."""
    x, y, z = view.tcp_position
    if z < SAFE_Z - 0.004:
        return _move(view, [x, y, SAFE_Z], gripper, yaw)
    return np.zeros(3), np.zeros(3), gripper


def _approach(view: ExpertView, contact, gripper: float, yaw: float = 0.0, hover: float = APPROACH_Z) -> Action:
    """Reach ``contact`` from above through a funnel: the allowed height falls linearly from ``hover`` at
    FUNNEL of xy error to the contact itself within ALIGNED, so the target (and the action) changes smoothly
    with the state, which a policy can imitate. A tool below the funnel moves sideways only in proportion to
    how close it is to the funnel's height, so it rises before it travels and never drags through the scene."""
    contact = np.asarray(contact, dtype=float)
    pos = view.tcp_position
    hover = max(hover, contact[2])
    xy_error = float(np.linalg.norm(contact[:2] - pos[:2]))
    if _yaw_error(view, yaw) > YAW_ALIGNED:
        xy_error = max(xy_error, FUNNEL)  # turn before descending
    opening = float(np.clip((xy_error - ALIGNED) / (FUNNEL - ALIGNED), 0.0, 1.0))
    height = contact[2] + (hover - contact[2]) * opening
    travel = float(np.clip(1.0 - (height - pos[2]) / RISE_FIRST, 0.0, 1.0))
    target_xy = pos[:2] + travel * (contact[:2] - pos[:2])
    return _move(view, [target_xy[0], target_xy[1], height], gripper, yaw)


def _grasp_yaw(block_yaw: float) -> float:
    """Closest yaw (mod 90 deg, the cube's symmetry) that puts the fingers on two opposite faces."""
    return float((block_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def _gripper_first(view: ExpertView, wanted: float) -> Action | None:
    """Open or close the gripper in place before moving on, when it is not where the plan needs it."""
    if abs(view.commanded_closure - wanted) > 0.5 or abs(view.finger_closure - wanted) > 0.5:
        return np.zeros(3), np.zeros(3), wanted
    return None


def _finish_or_recover(view: ExpertView, done: bool) -> Action | None:
    """What every closed-fingers task does first: lift off once done, close the gripper if it is open."""
    return _lift_off(view, CLOSED) if done else _gripper_first(view, CLOSED)


def press_button(view: ExpertView, done: bool) -> Action:
    cap = view.scene.body_position("button")
    press_depth = cap[2] + 0.02 + PAD_BELOW_TCP - 0.013
    return _finish_or_recover(view, done) or _approach(view, [cap[0], cap[1], press_depth], CLOSED,
                                                       hover=cap[2] + 0.1)


def _push(view: ExpertView, point: np.ndarray, axis: int, direction: float, standoff: float, z: float,
          engaged_below: float, goal, hover: float = APPROACH_Z) -> Action:
    """Push ``point`` along ``axis`` in ``direction`` (+1 / -1) with closed fingers: approach the contact point
    ``standoff`` behind it at height ``z``; once the tool is low (below ``engaged_below``), lined up and behind
    it, move to ``goal``."""
    pos = view.tcp_position
    other = 1 - axis
    behind = (point[axis] - pos[axis]) * direction
    if abs(pos[other] - point[other]) < 0.012 and pos[2] < engaged_below and 0.0 < behind < standoff + 0.02:
        return _move(view, goal, CLOSED)
    contact = np.array(point, dtype=float)
    contact[axis] -= direction * standoff
    contact[2] = z
    return _approach(view, contact, CLOSED, hover=hover)


def move_drawer(view: ExpertView, done: bool, opening: bool) -> Action:
    """Push the drawer's handle post from behind (open: towards -x) or from the front (close) with closed
    fingers; closing stops 5 mm short of shut."""
    handle = view.scene.handle_position()
    direction = -1.0 if opening else 1.0
    standoff = 0.012 + PAD_X + CLEARANCE
    z = handle[2] + PAD_BELOW_TCP - 0.01
    travel = -0.15 if opening else view.scene.drawer_opening() - 0.005
    goal = [handle[0] - direction * standoff + travel, handle[1], z]
    return _finish_or_recover(view, done) or _push(view, handle, 0, direction, standoff, z, handle[2] + 0.02, goal,
                                                   hover=SAFE_Z + 0.04)


def push_block_left(view: ExpertView, done: bool, color: str) -> Action:
    block = view.scene.body_position(f"{color}_block")
    z = 0.028
    goal = [block[0], view.tcp_position[1] + MAX_STEP, z]
    return _finish_or_recover(view, done) or _push(view, block, 1, 1.0, BLOCK_HALF * np.sqrt(2) + PAD_Y_CLOSED
                                                   + CLEARANCE, z, 0.045, goal)


def move_slider(view: ExpertView, done: bool, direction: float) -> Action:
    """Push the slider knob along the rail; ``direction`` +1 = robot's left (+y), -1 = right."""
    knob = view.scene.body_position("slider")
    rail_y = knob[1] - view.scene.slider_position()
    z = 0.05
    goal = [knob[0], rail_y + direction * 0.085 - direction * (0.015 + PAD_Y_CLOSED), z]
    return _finish_or_recover(view, done) or _push(view, knob, 1, direction, 0.015 + PAD_Y_CLOSED + CLEARANCE, z,
                                                   0.07, goal)


def lift_block(view: ExpertView, done: bool, color: str) -> Action:
    body = f"{color}_block"
    block = view.scene.body_position(body)
    yaw = _grasp_yaw(view.scene.body_yaw(body))
    near = float(np.linalg.norm(block - view.tcp_position)) < 0.02
    on_block = GRASP_CLOSURE_BAND[0] <= view.finger_closure <= GRASP_CLOSURE_BAND[1]
    closing = view.commanded_closure > 0.5
    if done or (closing and near and on_block and _fingers_settled(view)):
        return _lift_off(view, CLOSED, yaw)  # holding it: carry it up (and keep it there)
    grasp = [block[0], block[1], BLOCK_HALF + 0.002]
    at_grasp = float(np.linalg.norm(np.subtract(grasp, view.tcp_position))) < 0.006
    if closing and (near or at_grasp) and view.finger_closure < GRASP_CLOSURE_BAND[1]:
        return np.zeros(3), np.zeros(3), CLOSED  # fingers still closing around it
    if closing or view.finger_closure > 0.15:
        return _move(view, [*view.tcp_position[:2], min(view.tcp_position[2] + MAX_STEP, APPROACH_Z)]
                     if view.tcp_position[2] < APPROACH_Z else view.tcp_position, OPEN, yaw)
    if at_grasp and _yaw_error(view, yaw) < YAW_ALIGNED:
        return np.zeros(3), np.zeros(3), CLOSED
    return _approach(view, grasp, OPEN, yaw)


def _fingers_settled(view: ExpertView) -> bool:
    """The fingers have stopped on the block (closed past the band's start, a finger moving < 1 mm/step)."""
    return view.finger_closure >= GRASP_CLOSURE_BAND[0] + 0.05


Expert = Callable[[ExpertView, bool], Action]
EXPERTS: dict[str, Expert] = {
    "open_drawer": lambda v, done: move_drawer(v, done, opening=True),
    "close_drawer": lambda v, done: move_drawer(v, done, opening=False),
    "press_button": press_button,
    "lift_red_block": lambda v, done: lift_block(v, done, "red"),
    "push_blue_block_left": lambda v, done: push_block_left(v, done, "blue"),
    "move_slider_right": lambda v, done: move_slider(v, done, -1.0),
    "move_slider_left": lambda v, done: move_slider(v, done, 1.0),
}


def expert_action(task: str, view: ExpertView, done: bool) -> Action:
    """The expert's action for ``task`` in the state ``view`` shows; ``done`` is the task oracle's verdict."""
    dp, dr, gripper = EXPERTS[task](view, done)
    return np.asarray(dp, dtype=float).copy(), np.asarray(dr, dtype=float).copy(), float(gripper)
