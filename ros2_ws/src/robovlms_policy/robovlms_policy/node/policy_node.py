"""Policy node: camera images (and, for checkpoints trained with it, the robot state) and /instruction in,
7-DoF end-effector commands out at the control rate.

Every tick publishes exactly one EndEffectorCommand: the model's action for that tick, or a hold (zero motion,
gripper unchanged) when there is no instruction, a camera or the robot state is stale, no chunk covers the
tick yet, or the model misbehaved; PolicyCore (runtime/policy_core.py) makes those decisions. Forward passes
run on an InferenceWorker thread, so a slow model never delays a tick; everything else (message checks,
instructions, the tick) runs on one executor thread, so no locks are needed there.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.event_handler import QoSLivelinessChangedInfo, SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from robovlms_io import names, qos
from robovlms_io.commands import GRIPPER_UNCHANGED, end_effector_command, period_duration
from robovlms_io.images import ImageConversionError, check_image_msg
from robovlms_io.instructions import normalize_instruction
from robovlms_io.params import declare_params, param
from robovlms_io.spin import run_nodes
from robovlms_msgs.msg import ActionChunk, EndEffectorCommand, PolicyStatus
from robovlms_policy.node.inference_worker import ChunkResult, InferenceWorker, StepPolicy, ValidatedFrame
from robovlms_policy.runtime.chunk_strategies import STRATEGIES, make_strategy
from robovlms_policy.runtime.policy_core import CameraInput, PolicyCore, RobotStateInput, TickDecision
from robovlms_policy.vla.proprio import EE_POSE_GRIPPER
from robovlms_policy.vla.runtimes import RUNTIMES

ERROR_THROTTLE_S = 2.0
WARM_UP_INSTRUCTION = "warm up"


@dataclass(frozen=True)
class PolicyNodeParams:
    """Parameters of `policy_node`."""

    checkpoint: str = param("", "Checkpoint directory of the VLA core (required; see robovlms-init-checkpoint).")
    device: str = param("cpu", "Torch device for the model, e.g. cpu or cuda:0.")
    runtime: str = param("eager", "Inference runtime: eager, int8 (CPU), compile, onnx (graphs from robovlms-export), "
                                  "bf16 or cuda_graph (CUDA).", choices=RUNTIMES)
    control_rate_hz: float = param(10.0, "Rate of the control tick: one EndEffectorCommand and one PolicyStatus "
                                         "per tick.", positive=True)
    camera_topics: tuple = param(tuple(c.image_topic for c in names.CAMERAS.values()),
                                 "Image topics, one per entry of camera_names.")
    camera_names: tuple = param(tuple(names.CAMERAS), "Checkpoint camera fed by each topic of camera_topics.")
    max_frame_age_s: float = param(0.3, "A frame older than this (by arrival time) makes the node hold.",
                                   positive=True)
    execution_strategy: str = param("replan", "How chunks become per-tick actions.", choices=STRATEGIES)
    open_loop_steps: int = param(5, "Actions executed open-loop from each chunk (open_loop_k).", low=1)
    ensemble_decay: float = param(0.01, "Exponential weight decay m of temporal ensembling (temporal_ensemble).")
    ee_pose_topic: str = param(names.EE_POSE_TOPIC, "geometry_msgs/PoseStamped TCP pose (read when the "
                                                    "checkpoint uses proprioception).")
    joint_states_topic: str = param(names.JOINT_STATES_TOPIC, "sensor_msgs/JointState with the gripper knuckle "
                                                              "(proprioception).")
    max_state_age_s: float = param(0.3, "Robot state older than this (by arrival time) makes the node hold.",
                                   positive=True)
    max_instruction_length: int = param(512, "Longer instructions are rejected (not truncated); the node goes "
                                             "idle.", low=1)
    frame_id: str = param(names.BASE_FRAME, "Frame of the published deltas (the checkpoint's action frame).")
    instruction_topic: str = param(names.INSTRUCTION_TOPIC, "std_msgs/String instruction; empty or whitespace "
                                                            "means idle.")
    command_topic: str = param(names.COMMAND_TOPIC, "Output robovlms_msgs/EndEffectorCommand topic.")
    chunk_topic: str = param(names.CHUNK_TOPIC, "Output robovlms_msgs/ActionChunk topic (every new model chunk).")
    status_topic: str = param(names.POLICY_STATUS_TOPIC, "Output robovlms_msgs/PolicyStatus topic.")

    def __post_init__(self) -> None:
        if len(self.camera_topics) != len(self.camera_names) or not self.camera_topics:
            raise ValueError(f"camera_topics ({len(self.camera_topics)}) and camera_names "
                             f"({len(self.camera_names)}) must be non-empty lists of the same length")

    def strategy_params(self) -> dict:
        return {"replan": {}, "open_loop_k": {"k": self.open_loop_steps},
                "temporal_ensemble": {"m": self.ensemble_decay}}[self.execution_strategy]


class PolicyNode(Node):
    """Turns camera frames and an instruction into end-effector commands at a fixed rate."""

    def __init__(self, policy: StepPolicy | None = None, **node_kwargs) -> None:
        super().__init__("policy_node", **node_kwargs)
        p = self.params = declare_params(self, PolicyNodeParams)
        self._policy = policy if policy is not None else self._load_policy(p.checkpoint, p.device, p.runtime)
        self._period = 1.0 / p.control_rate_hz
        self._period_msg = period_duration(self._period)
        strategy = make_strategy(p.execution_strategy, **p.strategy_params())
        self.core = PolicyCore(self._camera_inputs(list(p.camera_topics), list(p.camera_names)), self._period,
                               p.max_frame_age_s, p.max_instruction_length, self._robot_state_input(p))
        self._worker = InferenceWorker(self._policy, strategy, self._on_chunk, self._on_model_error)
        self._tick_stamps: dict[int, object] = {}  # tick of a queued observation -> its time

        self._command_pub = self.create_publisher(EndEffectorCommand, p.command_topic, qos.COMMAND)
        self._chunk_pub = self.create_publisher(ActionChunk, p.chunk_topic, qos.COMMAND)
        self._status_pub = self.create_publisher(PolicyStatus, p.status_topic, qos.RELIABLE)
        for name, camera in self.core.cameras.items():
            self.create_subscription(Image, camera.source, lambda msg, n=name: self._on_image(n, msg),
                                     qos.SENSOR_SUBSCRIPTION)
        # Three subscriptions: a volatile one matches `ros2 topic pub /instruction ...` (volatile by default), a
        # transient-local one also receives a latched instruction published before this node started, and a
        # watch on trial owners' leased instruction withdraws it when its publisher's process dies. Publishers
        # that one of them cannot match are expected, not worth a warning. Repeats of the current instruction
        # change nothing.
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _: None)
        self.create_subscription(String, p.instruction_topic, self._on_instruction, qos.RELIABLE)
        self.create_subscription(String, p.instruction_topic, self._on_instruction, qos.LATCHED, event_callbacks=quiet)
        self._trial_instruction = ""
        self.create_subscription(String, p.instruction_topic, self._on_trial_instruction, qos.TRIAL_INSTRUCTION_WATCH,
                                 event_callbacks=SubscriptionEventCallbacks(liveliness=self._on_trial_liveliness,
                                                                            incompatible_qos=lambda _: None))
        if self.core.robot_state is not None:
            self.create_subscription(PoseStamped, p.ee_pose_topic, self._on_pose, qos.RELIABLE)
            self.create_subscription(JointState, p.joint_states_topic, self._on_joints, qos.RELIABLE)
        self._warm_up()
        self._worker.start()
        self._timer = self.create_timer(self._period, self._on_tick)
        self.get_logger().info(f"policy node ready: cameras {[(c.name, c.source) for c in self.core.cameras.values()]}"
                               f"{', robot state' if self.core.robot_state else ''}, {p.execution_strategy} at "
                               f"{1.0 / self._period:.1f} Hz")

    def _load_policy(self, checkpoint: str, device: str, runtime: str) -> StepPolicy:
        if not checkpoint:
            raise ValueError("parameter 'checkpoint' is empty: give a checkpoint directory "
                             "(make one with: robovlms-init-checkpoint --backbone paligemma "
                             "--structure policy_head --tiny OUT)")
        from robovlms_policy.vla.policy import VLAPolicy  # torch import deferred until a model is needed
        return VLAPolicy.from_checkpoint(checkpoint, device=device, runtime=runtime)

    def _camera_inputs(self, topics: list[str], camera_names: list[str]) -> list[CameraInput]:
        expected = list(getattr(self._policy, "camera_names", camera_names))
        if sorted(camera_names) != sorted(expected):
            raise ValueError(f"camera_names {camera_names} must name exactly the checkpoint's cameras {expected}")
        return [CameraInput(name, topic) for topic, name in zip(topics, camera_names)]

    def _robot_state_input(self, p: PolicyNodeParams) -> RobotStateInput | None:
        """The robot-state input a proprioceptive checkpoint needs, None for one that uses only cameras."""
        config = getattr(self._policy, "config", None)
        dim = getattr(config, "proprio_dim", 0)
        if not dim:
            return None
        layout = getattr(config, "proprio_layout", "")
        if layout != EE_POSE_GRIPPER:
            raise ValueError(f"the checkpoint takes {dim} proprioception values in layout {layout!r}; the policy "
                             f"node builds only '{EE_POSE_GRIPPER}' (ee_pose + gripper joint)")
        return RobotStateInput(p.max_state_age_s)

    def _warm_up(self) -> None:
        """One forward pass before the first tick: the first one pays for lazy imports and kernel set-up
        (seconds, holding the GIL), which would otherwise stall the control tick. Outputs are discarded and
        the policy is reset again before the first real step."""
        size = int(getattr(self._policy, "image_size", 224))
        start = time.perf_counter()
        self._policy.reset(WARM_UP_INSTRUCTION)
        proprio = None if self.core.robot_state is None else self.core.robot_state.neutral()
        self._policy.step({name: np.zeros((size, size, 3), np.uint8) for name in self.core.cameras}, proprio)
        self.get_logger().info(f"model warm-up took {1e3 * (time.perf_counter() - start):.0f} ms")

    # --- inputs -------------------------------------------------------------------------------------------

    def _on_image(self, camera: str, msg: Image) -> None:
        # Checked here, once (microseconds), so a malformed frame never counts as fresh; converted to RGB on the
        # inference thread, which keeps the ~1 ms copy of a 1280x720 frame off the control tick.
        try:
            pixels = check_image_msg(msg)
        except ImageConversionError as error:
            self.core.frame_rejected(camera)
            self.get_logger().error(f"rejected image on {self.core.cameras[camera].source}: {error}",
                                    throttle_duration_sec=ERROR_THROTTLE_S)
            return
        self.core.frame(camera, ValidatedFrame(pixels, msg.encoding, msg.header.stamp), time.monotonic())

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._log_refusal(self.core.robot_state.pose(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]),
                                                     msg.header.frame_id, time.monotonic()))

    def _on_joints(self, msg: JointState) -> None:
        joint_names = list(msg.name)
        if names.GRIPPER_JOINT not in joint_names:
            return  # another publisher's joints
        index = joint_names.index(names.GRIPPER_JOINT)
        knuckle = msg.position[index] if index < len(msg.position) else float("nan")
        self._log_refusal(self.core.robot_state.gripper(knuckle, time.monotonic()))

    def _log_refusal(self, reason: str) -> None:
        if reason:
            self.get_logger().error(reason, throttle_duration_sec=ERROR_THROTTLE_S)

    def _on_instruction(self, msg: String) -> None:
        update = self.core.new_instruction(msg.data)
        if update is None:
            return
        self._worker.set_instruction(update.instruction)
        if update.reason:
            self.get_logger().error(update.log)
        else:
            self.get_logger().info(update.log)

    def _on_trial_instruction(self, msg: String) -> None:
        self._trial_instruction = msg.data
        self._on_instruction(msg)

    def _on_trial_liveliness(self, info: QoSLivelinessChangedInfo) -> None:
        if info.alive_count > 0 or info.alive_count_change >= 0:
            return
        withdrawn, self._trial_instruction = self._trial_instruction, ""
        if withdrawn and self.core.instruction == normalize_instruction(withdrawn):
            self.get_logger().error(f"the trial's owner is gone (its instruction publisher lost its liveliness "
                                    f"lease): stopping '{withdrawn}', idle")
            self._on_instruction(String(data=""))

    def _on_chunk(self, result: ChunkResult) -> None:
        chunk = ActionChunk()
        chunk.header.stamp = self._tick_stamps.get(result.tick, self.get_clock().now().to_msg())
        chunk.header.frame_id = self.params.frame_id
        chunk.period = self._period_msg
        chunk.commands = [self._command(a, g) for a, g in zip(result.arm, result.gripper)]
        chunk.camera_names = list(result.frame_stamps)
        chunk.frame_stamps = list(result.frame_stamps.values())
        self._chunk_pub.publish(chunk)

    def _on_model_error(self, message: str) -> None:
        # Latched until a new instruction: a model that produced NaN once is not trusted to move the arm.
        self.core.latch_model_error(message)
        self.get_logger().error(f"{message}; holding until a new instruction", throttle_duration_sec=ERROR_THROTTLE_S)

    # --- control tick ---------------------------------------------------------------------------------------

    def _act(self, tick: int, frames: dict, proprio: np.ndarray | None):
        if self._worker.request(tick, frames, proprio):
            # The observation's time, for its chunk's header (a handful of requests are in flight at most).
            self._tick_stamps = {t: s for t, s in self._tick_stamps.items() if t > tick - 50}
            self._tick_stamps[tick] = self.get_clock().now().to_msg()
        return self._worker.action_for(tick)

    def _on_tick(self) -> None:
        now = time.monotonic()
        decision = self.core.tick(now, self._act)
        if decision.action is None:
            command, chunk_index = self._command(np.zeros(6), GRIPPER_UNCHANGED), 0
        else:
            arm, gripper, chunk_index = decision.action
            command = self._command(arm, gripper)
        self._command_pub.publish(command)
        self._publish_status(now, decision, chunk_index)

    # --- outputs --------------------------------------------------------------------------------------------

    def _command(self, arm: np.ndarray, gripper: float) -> EndEffectorCommand:
        return end_effector_command(arm, gripper, self.params.frame_id, self.get_clock().now().to_msg(),
                                    self._period_msg)

    def _publish_status(self, now: float, decision: TickDecision, chunk_index: int) -> None:
        status = PolicyStatus()
        status.header.stamp = self.get_clock().now().to_msg()
        status.state = decision.state
        status.instruction = self.core.instruction
        status.target_period = self._period
        status.tick_period = decision.tick_period
        status.model_latency = self._worker.latency_s
        status.camera_names = list(self.core.cameras)
        status.frame_ages = self.core.frame_ages(now)
        status.missed_ticks = decision.missed_ticks
        status.chunk_index = chunk_index
        status.hold_reason = decision.reason
        self._status_pub.publish(status)

    def destroy_node(self) -> None:
        worker = getattr(self, "_worker", None)  # absent when construction failed
        if worker is not None:
            worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("policy_node", PolicyNode, args)


if __name__ == "__main__":
    sys.exit(main())
