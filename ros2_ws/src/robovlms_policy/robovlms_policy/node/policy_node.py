"""Policy node: camera images and /instruction in, 7-DoF end-effector commands out at the control rate.

Every tick publishes exactly one EndEffectorCommand: the model's action for that tick, or a hold (zero motion,
gripper unchanged) when there is no instruction, a camera is stale, no chunk covers the tick yet, or the model
misbehaved. Forward passes run on an InferenceWorker thread, so a slow model never delays a tick; everything
else (image conversion, instructions, the tick) runs on one executor thread, so no locks are needed there.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from robovlms_msgs.msg import ActionChunk, EndEffectorCommand, PolicyStatus
from robovlms_policy.node.chunk_execution import make_executor
from robovlms_policy.node.commands import end_effector_command, period_duration
from robovlms_policy.node.image_conversion import ImageConversionError, check_image_msg
from robovlms_policy.node.inference_worker import ChunkResult, InferenceWorker, StepPolicy
from robovlms_policy.node.spin import spin_node

IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                       durability=DurabilityPolicy.VOLATILE)
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
RELIABLE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
ERROR_THROTTLE_S = 2.0
WARM_UP_INSTRUCTION = "warm up"

PARAMETERS = {
    "checkpoint": ("", "Checkpoint directory of the VLA core (see robovlms-init-checkpoint)."),
    "device": ("cpu", "Torch device for the model, e.g. cpu or cuda:0."),
    "control_rate_hz": (10.0, "Rate of the control tick: one EndEffectorCommand and one PolicyStatus per tick."),
    "camera_topics": (["/rgb/image_raw", "/camera/camera/color/image_raw"],
                      "Image topics, one per entry of camera_names."),
    "camera_names": (["static", "wrist"], "Checkpoint camera fed by each topic of camera_topics."),
    "max_frame_age_s": (0.3, "A frame older than this (by arrival time) makes the node hold."),
    "execution_strategy": ("replan", "replan | open_loop_k | temporal_ensemble: how chunks become per-tick actions."),
    "open_loop_steps": (5, "Actions executed open-loop from each chunk (open_loop_k strategy)."),
    "ensemble_decay": (0.01, "Exponential weight decay m of temporal ensembling (temporal_ensemble strategy)."),
    "max_instruction_length": (512, "Longer instructions are rejected (not truncated); the node goes idle."),
    "frame_id": ("base_link", "Frame of the published deltas (the checkpoint's action frame)."),
    "instruction_topic": ("/instruction", "std_msgs/String instruction; empty or whitespace means idle."),
    "command_topic": ("ee_command", "Output robovlms_msgs/EndEffectorCommand topic."),
    "chunk_topic": ("action_chunk", "Output robovlms_msgs/ActionChunk topic (every new model chunk)."),
    "status_topic": ("policy_status", "Output robovlms_msgs/PolicyStatus topic."),
}
STRATEGY_PARAMS = {"replan": {}, "open_loop_k": {"k": "open_loop_steps"}, "temporal_ensemble": {"m": "ensemble_decay"}}


def validate_parameters(p: dict) -> None:
    """Refuse values that would make the node divide by zero, hold forever or accept anything."""
    for name in ("control_rate_hz", "max_frame_age_s"):
        if not (isinstance(p[name], (int, float)) and math.isfinite(p[name]) and p[name] > 0):
            raise ValueError(f"parameter '{name}' must be a positive number, got {p[name]!r}")
    for name in ("max_instruction_length", "open_loop_steps"):
        if not (isinstance(p[name], int) and p[name] >= 1):
            raise ValueError(f"parameter '{name}' must be an integer >= 1, got {p[name]!r}")


@dataclass
class CameraSlot:
    """Latest good (validated, not yet converted) frame of one camera."""

    name: str
    topic: str
    frame: Image | None = None
    received_at: float = -math.inf
    errors: int = field(default=0)

    def age(self, now: float) -> float:
        return now - self.received_at if self.frame is not None else -1.0


class PolicyNode(Node):
    """Turns camera frames and an instruction into end-effector commands at a fixed rate."""

    def __init__(self, policy: StepPolicy | None = None, **node_kwargs) -> None:
        super().__init__("policy_node", **node_kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        validate_parameters(p)
        self._policy = policy if policy is not None else self._load_policy(p["checkpoint"], p["device"])
        self._period = 1.0 / float(p["control_rate_hz"])
        self._period_msg = period_duration(self._period)
        self._max_age = float(p["max_frame_age_s"])
        self._max_instruction = int(p["max_instruction_length"])
        self._frame_id = p["frame_id"]
        self._cameras = self._make_camera_slots(list(p["camera_topics"]), list(p["camera_names"]))

        strategy = p["execution_strategy"]
        if strategy not in STRATEGY_PARAMS:
            raise ValueError(f"execution_strategy '{strategy}' is not one of {sorted(STRATEGY_PARAMS)}")
        executor = make_executor(strategy, **{k: p[v] for k, v in STRATEGY_PARAMS[strategy].items()})
        self._worker = InferenceWorker(self._policy, executor, self._on_chunk, self._on_model_error)

        self._instruction = ""
        self._hold_reason = ""
        self._model_error = ""
        self._tick = -1
        self._t0 = 0.0
        self._last_tick_time = 0.0
        self._missed_ticks = 0

        self._command_pub = self.create_publisher(EndEffectorCommand, p["command_topic"], COMMAND_QOS)
        self._chunk_pub = self.create_publisher(ActionChunk, p["chunk_topic"], COMMAND_QOS)
        self._status_pub = self.create_publisher(PolicyStatus, p["status_topic"], RELIABLE_QOS)
        for slot in self._cameras:
            self.create_subscription(Image, slot.topic, lambda msg, s=slot: self._on_image(s, msg), IMAGE_QOS)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, RELIABLE_QOS)
        self._warm_up()
        self._worker.start()
        self._timer = self.create_timer(self._period, self._on_tick)
        self.get_logger().info(f"policy node ready: cameras {[(s.name, s.topic) for s in self._cameras]}, "
                               f"{strategy} at {1.0 / self._period:.1f} Hz")

    def _load_policy(self, checkpoint: str, device: str) -> StepPolicy:
        if not checkpoint:
            raise ValueError("parameter 'checkpoint' is empty: give a checkpoint directory "
                             "(make one with: robovlms-init-checkpoint --backbone paligemma "
                             "--structure policy_head --tiny OUT)")
        from robovlms_policy.vla.policy import VLAPolicy  # torch import deferred until a model is needed
        return VLAPolicy.from_checkpoint(checkpoint, device=device)

    def _warm_up(self) -> None:
        """One forward pass before the first tick: the first one pays for lazy imports and kernel set-up
        (seconds, holding the GIL), which would otherwise stall the control tick. Outputs are discarded and
        the policy is reset again before the first real step."""
        size = int(getattr(self._policy, "image_size", 224))
        start = time.perf_counter()
        self._policy.reset(WARM_UP_INSTRUCTION)
        self._policy.step({s.name: np.zeros((size, size, 3), np.uint8) for s in self._cameras})
        self.get_logger().info(f"model warm-up took {1e3 * (time.perf_counter() - start):.0f} ms")

    def _make_camera_slots(self, topics: list[str], names: list[str]) -> list[CameraSlot]:
        if len(topics) != len(names) or not topics:
            raise ValueError(f"camera_topics ({len(topics)}) and camera_names ({len(names)}) must be non-empty "
                             "lists of the same length")
        expected = list(getattr(self._policy, "camera_names", names))
        if sorted(names) != sorted(expected):
            raise ValueError(f"camera_names {names} must name exactly the checkpoint's cameras {expected}")
        return [CameraSlot(name=n, topic=t) for t, n in zip(topics, names)]

    # --- inputs -------------------------------------------------------------------------------------------

    def _on_image(self, slot: CameraSlot, msg: Image) -> None:
        # Validated here (microseconds) so a malformed frame never counts as fresh; converted to RGB on the
        # inference thread, which keeps the ~1 ms copy of a 1280x720 frame off the control tick.
        try:
            check_image_msg(msg)
        except ImageConversionError as error:
            slot.errors += 1
            self.get_logger().error(f"rejected image on {slot.topic}: {error}", throttle_duration_sec=ERROR_THROTTLE_S)
            return
        slot.frame, slot.received_at = msg, time.monotonic()

    def _on_instruction(self, msg: String) -> None:
        text = " ".join(msg.data.split())  # collapse whitespace and line breaks
        if len(text) > self._max_instruction:
            self.get_logger().error(f"instruction rejected: {len(text)} characters > max_instruction_length "
                                    f"{self._max_instruction}; going idle")
            self._set_instruction("", f"last instruction rejected: {len(text)} > {self._max_instruction} characters")
        elif text != self._instruction or self._model_error:
            # Re-sending the current instruction (`ros2 topic pub` repeats it every second) changes nothing.
            self._set_instruction(text, "")

    def _set_instruction(self, text: str, reason: str) -> None:
        self._instruction, self._hold_reason, self._model_error = text, reason, ""
        self._worker.set_instruction(text)
        self.get_logger().info(f"instruction: '{text}'" if text else "instruction cleared: idle")

    def _on_chunk(self, result: ChunkResult) -> None:
        chunk = ActionChunk()
        chunk.header.stamp = self.get_clock().now().to_msg()
        chunk.header.frame_id = self._frame_id
        chunk.period = self._period_msg
        chunk.commands = [self._command(a, g) for a, g in zip(result.arm, result.gripper)]
        self._chunk_pub.publish(chunk)

    def _on_model_error(self, message: str) -> None:
        # Latched until a new instruction: a model that produced NaN once is not trusted to move the arm.
        self._model_error = message
        self.get_logger().error(f"{message}; holding until a new instruction", throttle_duration_sec=ERROR_THROTTLE_S)

    # --- control tick ---------------------------------------------------------------------------------------

    def _on_tick(self) -> None:
        now = time.monotonic()
        tick = self._tick_index(now)
        state, reason, action = self._decide(now, tick)
        if action is None:
            command = self._command(np.zeros(6), EndEffectorCommand.GRIPPER_UNCHANGED)
            chunk_index = 0
        else:
            arm, gripper, chunk_index = action
            command = self._command(arm, gripper)
        self._command_pub.publish(command)
        self._publish_status(now, state, reason, chunk_index)

    def _tick_index(self, now: float) -> int:
        """Tick number on the ideal schedule; skipped numbers count as missed ticks."""
        if self._tick < 0:
            self._t0, self._tick, self._last_tick_time = now, 0, now
            return 0
        tick = max(self._tick + 1, int(round((now - self._t0) / self._period)))
        self._missed_ticks += tick - self._tick - 1
        self._tick = tick
        return tick

    def _decide(self, now: float, tick: int) -> tuple[int, str, tuple[np.ndarray, float, int] | None]:
        if self._model_error:
            return PolicyStatus.STATE_ERROR, self._model_error, None
        if not self._instruction:
            return PolicyStatus.STATE_IDLE, self._hold_reason, None
        stale = [s for s in self._cameras if s.frame is None or now - s.received_at > self._max_age]
        if stale:
            return PolicyStatus.STATE_HOLDING, "; ".join(self._staleness(s, now) for s in stale), None
        self._worker.request(tick, {s.name: s.frame for s in self._cameras})
        action = self._worker.action_for(tick)
        if action is None:
            return PolicyStatus.STATE_HOLDING, "waiting for the model's first chunk", None
        arm, gripper, _ = action
        # Chunks are checked when submitted; this last check guards what is actually sent to the arm.
        if not (np.all(np.isfinite(arm)) and math.isfinite(gripper)):
            self._on_model_error("non-finite action")
            return PolicyStatus.STATE_ERROR, self._model_error, None
        return PolicyStatus.STATE_RUNNING, "", action

    def _staleness(self, slot: CameraSlot, now: float) -> str:
        if slot.frame is None:
            bad = f" ({slot.errors} rejected)" if slot.errors else ""
            return f"no frame yet from {slot.name} ({slot.topic}){bad}"
        return f"{slot.name} frame is {now - slot.received_at:.2f} s old (> {self._max_age:.2f} s)"

    # --- outputs --------------------------------------------------------------------------------------------

    def _command(self, arm: np.ndarray, gripper: float) -> EndEffectorCommand:
        return end_effector_command(arm, gripper, self._frame_id, self.get_clock().now().to_msg(),
                                    self._period_msg)

    def _publish_status(self, now: float, state: int, reason: str, chunk_index: int) -> None:
        status = PolicyStatus()
        status.header.stamp = self.get_clock().now().to_msg()
        status.state = state
        status.instruction = self._instruction
        status.target_period = self._period
        status.tick_period = now - self._last_tick_time
        status.model_latency = self._worker.latency_s
        status.camera_names = [s.name for s in self._cameras]
        status.frame_ages = [s.age(now) for s in self._cameras]
        status.missed_ticks = self._missed_ticks
        status.chunk_index = chunk_index
        status.hold_reason = reason
        self._last_tick_time = now
        self._status_pub.publish(status)

    def destroy_node(self) -> None:
        worker = getattr(self, "_worker", None)  # absent when construction failed
        if worker is not None:
            worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return spin_node(PolicyNode, "policy_node", args)

if __name__ == "__main__":
    sys.exit(main())
