"""PolicyCore: the policy node's decisions, free of ROS (as DriverCore is for the driver).

It keeps the instruction, each camera's newest valid frame, the robot state, the tick schedule and the model's
error latch, and decides every tick whether the node acts or holds, and why. Frames arrive already validated
(the node checks each message once, on arrival); their content is opaque here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from robovlms_io.instructions import normalize_instruction
from robovlms_io.names import BASE_FRAME
from robovlms_policy.vla.proprio import ee_pose_gripper

# robovlms_msgs/PolicyStatus state constants
STATE_IDLE, STATE_RUNNING, STATE_HOLDING, STATE_ERROR = 0, 1, 2, 3
BASE_FRAMES = (BASE_FRAME, "")
# (tick, frames by camera, robot state or None) -> the action for the tick (arm (6,), gripper, chunk index)
Act = Callable[[int, dict[str, Any], "np.ndarray | None"], "tuple[np.ndarray, float, int] | None"]


@dataclass
class CameraInput:
    """Newest valid frame of one camera."""

    name: str
    source: str  # where frames come from (the topic), for messages
    frame: Any = None
    received_at: float = -math.inf
    rejected: int = field(default=0)

    def age(self, now: float) -> float:
        return now - self.received_at if self.frame is not None else -1.0


class RobotStateInput:
    """Newest valid TCP pose and gripper knuckle angle (the ee_pose_gripper proprioception layout)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._pose: tuple[np.ndarray, np.ndarray] | None = None
        self._pose_time = -math.inf
        self._knuckle: float | None = None
        self._knuckle_time = -math.inf

    def pose(self, position: np.ndarray, quaternion: np.ndarray, frame_id: str, now: float) -> str:
        """Take a TCP pose; returns why it was refused ("" when taken)."""
        if frame_id not in BASE_FRAMES:
            return f"ee_pose refused: frame {frame_id[:64]!r}, expected {BASE_FRAME}"
        if not (np.isfinite(position).all() and np.isfinite(quaternion).all()) \
                or abs(float(np.linalg.norm(quaternion)) - 1.0) > 0.1:
            return "ee_pose refused: non-finite position or not a unit quaternion"
        self._pose, self._pose_time = (np.asarray(position, float), np.asarray(quaternion, float)), now
        return ""

    def gripper(self, knuckle: float, now: float) -> str:
        if not math.isfinite(knuckle):
            return "gripper joint state refused: non-finite position"
        self._knuckle, self._knuckle_time = float(knuckle), now
        return ""

    def vector(self, now: float) -> tuple[np.ndarray | None, str]:
        """(proprioception, "") when fresh, else (None, the reason to hold)."""
        for what, value, at in (("ee_pose", self._pose, self._pose_time),
                                ("gripper joint state", self._knuckle, self._knuckle_time)):
            if value is None:
                return None, f"no {what} yet"
            if now - at > self.max_age_s:
                return None, f"{what} is {now - at:.2f} s old (> {self.max_age_s:.2f} s)"
        return ee_pose_gripper(*self._pose, self._knuckle), ""

    @staticmethod
    def neutral() -> np.ndarray:
        """A plausible state (tool pointing down above the table, gripper open) for a warm-up pass."""
        return ee_pose_gripper([0.4, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], 0.0)


@dataclass(frozen=True)
class TickDecision:
    tick: int
    state: int
    reason: str
    action: tuple[np.ndarray, float, int] | None  # None: hold
    tick_period: float  # s since the previous tick
    missed_ticks: int


@dataclass(frozen=True)
class InstructionUpdate:
    instruction: str  # "" = idle
    reason: str  # why the node holds now ("" when it acts), e.g. a refused instruction
    log: str


class PolicyCore:
    def __init__(self, cameras: list[CameraInput], period: float, max_frame_age_s: float,
                 max_instruction_length: int, robot_state: RobotStateInput | None = None) -> None:
        self.cameras = {camera.name: camera for camera in cameras}
        self.robot_state = robot_state
        self.period = period
        self.max_frame_age_s = max_frame_age_s
        self.max_instruction_length = max_instruction_length
        self.instruction = ""
        self.hold_reason = ""
        self.model_error = ""
        self.tick_index = -1
        self.missed_ticks = 0
        self._t0 = 0.0
        self._last_tick_time = 0.0

    # --- inputs ---------------------------------------------------------------------------------------------
    def frame(self, camera: str, frame: Any, now: float) -> None:
        slot = self.cameras[camera]
        slot.frame, slot.received_at = frame, now

    def frame_rejected(self, camera: str) -> None:
        self.cameras[camera].rejected += 1

    def new_instruction(self, text: str) -> InstructionUpdate | None:
        """An instruction message: what changes (None when nothing does: re-sending the current instruction, as
        `ros2 topic pub` does every second, keeps the episode going)."""
        text = normalize_instruction(text)
        if len(text) > self.max_instruction_length:
            reason = f"last instruction rejected: {len(text)} > {self.max_instruction_length} characters"
            self._set("", reason)
            return InstructionUpdate("", reason, f"instruction rejected: {len(text)} characters > "
                                                 f"max_instruction_length {self.max_instruction_length}; going idle")
        if text == self.instruction and not self.model_error:
            return None
        self._set(text, "")
        return InstructionUpdate(text, "", f"instruction: '{text}'" if text else "instruction cleared: idle")

    def _set(self, text: str, reason: str) -> None:
        self.instruction, self.hold_reason, self.model_error = text, reason, ""

    def latch_model_error(self, message: str) -> None:
        """A model that produced NaN or failed once is not trusted to move the arm until a new instruction."""
        self.model_error = message

    # --- the tick ---------------------------------------------------------------------------------------------
    def tick(self, now: float, act: Act) -> TickDecision:
        tick = self._next_tick(now)
        tick_period = now - self._last_tick_time
        self._last_tick_time = now
        state, reason, action = self._decide(now, tick, act)
        return TickDecision(tick, state, reason, action, tick_period, self.missed_ticks)

    def _next_tick(self, now: float) -> int:
        """Tick number on the ideal schedule; skipped numbers count as missed ticks."""
        if self.tick_index < 0:
            self._t0, self.tick_index, self._last_tick_time = now, 0, now
            return 0
        tick = max(self.tick_index + 1, int(round((now - self._t0) / self.period)))
        self.missed_ticks += tick - self.tick_index - 1
        self.tick_index = tick
        return tick

    def _decide(self, now: float, tick: int, act: Act) -> tuple[int, str, tuple[np.ndarray, float, int] | None]:
        if self.model_error:
            return STATE_ERROR, self.model_error, None
        if not self.instruction:
            return STATE_IDLE, self.hold_reason, None
        stale = [self._staleness(slot, now) for slot in self.cameras.values()
                 if slot.frame is None or now - slot.received_at > self.max_frame_age_s]
        proprio = None
        if self.robot_state is not None:
            proprio, problem = self.robot_state.vector(now)
            if problem:
                stale.append(problem)
        if stale:
            return STATE_HOLDING, "; ".join(stale), None
        action = act(tick, {name: slot.frame for name, slot in self.cameras.items()}, proprio)
        if action is None:
            return STATE_HOLDING, "waiting for the model's first chunk", None
        arm, gripper, _ = action
        # Chunks are checked when submitted; this last check guards what is actually sent to the arm.
        if not (np.all(np.isfinite(arm)) and math.isfinite(gripper)):
            self.latch_model_error("non-finite action")
            return STATE_ERROR, self.model_error, None
        return STATE_RUNNING, "", action

    def _staleness(self, slot: CameraInput, now: float) -> str:
        if slot.frame is None:
            bad = f" ({slot.rejected} rejected)" if slot.rejected else ""
            return f"no frame yet from {slot.name} ({slot.source}){bad}"
        return f"{slot.name} frame is {now - slot.received_at:.2f} s old (> {self.max_frame_age_s:.2f} s)"

    def frame_ages(self, now: float) -> list[float]:
        return [slot.age(now) for slot in self.cameras.values()]
