"""Trial recorder node: start / stop / label evaluation trials and record each one as a rosbag2 (MCAP).

Starting a trial opens a bag under ``output_dir/<trial_id>/bag``, then publishes the instruction so the
policy starts; stopping (by service, or after ``max_steps`` commands) publishes an empty instruction so the
policy goes idle, closes the bag and writes ``trial.json``; labelling adds the outcome to ``trial.json``.
"""
from __future__ import annotations

import importlib
import json
import re
import sys
import threading
import time
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from robovlms_msgs.srv import LabelTrial, StartTrial, StopTrial
from robovlms_policy.node.spin import spin_node
from robovlms_policy.trials.bag_writer import TrialBag, make_typestore

DEFAULT_TOPICS = [
    "/rgb/image_raw=sensor_msgs/msg/Image",
    "/camera/camera/color/image_raw=sensor_msgs/msg/Image",
    "/instruction=std_msgs/msg/String",
    "ee_command=robovlms_msgs/msg/EndEffectorCommand",
    "action_chunk=robovlms_msgs/msg/ActionChunk",
    "policy_status=robovlms_msgs/msg/PolicyStatus",
    "joint_states=sensor_msgs/msg/JointState",
    "ee_pose=geometry_msgs/msg/PoseStamped",
    "driver_status=robovlms_msgs/msg/DriverStatus",
    "episode_info=robovlms_msgs/msg/EpisodeInfo",
]
PARAMETERS = {
    "output_dir": ("runs/trials", "Directory receiving one folder per trial (bag + trial.json)."),
    "record_topics": (DEFAULT_TOPICS, "Topics recorded during a trial, as 'topic=package/msg/Type'."),
    "instruction_topic": ("/instruction", "Where the trial's instruction (and the empty stop instruction) goes."),
    "command_topic": ("ee_command", "Commands counted as steps towards max_steps."),
    "max_instruction_length": (512, "Longer instructions are refused."),
}
INSTRUCTION_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def message_class(msgtype: str):
    """Import the Python class of 'package/msg/Type'."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class TrialRecorderNode(Node):
    """Serves trial/start, trial/stop and trial/label and records trials as MCAP bags."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("trial_recorder", **node_kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._output_dir = Path(p["output_dir"]).expanduser().resolve()
        self._max_instruction = int(p["max_instruction_length"])
        self._typestore = make_typestore([Path(get_package_share_directory("robovlms_msgs"))])
        self._lock = threading.Lock()
        self._bag: TrialBag | None = None
        self._trial: dict | None = None
        self._last_stopped: str = ""
        self._counter = 0

        self._command_topic = self.resolve_topic_name(p["command_topic"])
        for entry in p["record_topics"]:
            topic, _, msgtype = entry.partition("=")
            self._subscribe(self.resolve_topic_name(topic.strip()), msgtype.strip())
        self._instruction_pub = self.create_publisher(String, p["instruction_topic"], INSTRUCTION_QOS)
        self.create_service(StartTrial, "trial/start", self._on_start)
        self.create_service(StopTrial, "trial/stop", self._on_stop)
        self.create_service(LabelTrial, "trial/label", self._on_label)
        self.get_logger().info(f"trial recorder ready: trials go to {self._output_dir}")

    def _subscribe(self, topic: str, msgtype: str) -> None:
        try:
            cls = message_class(msgtype)
        except (ValueError, ImportError, AttributeError) as error:
            raise ValueError(f"record_topics entry '{topic}={msgtype}': unknown message type ({error})") from error
        # Best effort accepts both best-effort camera drivers and reliable publishers.
        reliability = ReliabilityPolicy.BEST_EFFORT if msgtype == "sensor_msgs/msg/Image" else ReliabilityPolicy.RELIABLE
        qos = QoSProfile(depth=50, reliability=reliability)
        self.create_subscription(cls, topic, lambda data, t=topic, m=msgtype: self._record(t, m, data), qos, raw=True)

    def _record(self, topic: str, msgtype: str, cdr: bytes) -> None:
        stop_reason = None
        with self._lock:
            if self._bag is None:
                return
            self._bag.write(topic, msgtype, self.get_clock().now().nanoseconds, cdr)
            if topic == self._command_topic:
                self._trial["steps"] += 1
                limit = self._trial["max_steps"]
                if limit and self._trial["steps"] >= limit:
                    stop_reason = "max_steps"
        if stop_reason:
            self.stop_trial(stop_reason)

    @property
    def active_trial_id(self) -> str:
        """Identifier of the trial being recorded, empty when none is."""
        with self._lock:
            return self._trial["trial_id"] if self._trial is not None else ""

    def trial_metadata(self, trial_id: str) -> dict:
        """The stored trial.json of a trial."""
        return json.loads((self._output_dir / trial_id / "trial.json").read_text())

    # --- services ---------------------------------------------------------------------------------------------

    def _on_start(self, request: StartTrial.Request, response: StartTrial.Response) -> StartTrial.Response:
        response.success, response.message, response.trial_id = self.start_trial(
            request.instruction, request.task, request.setting, request.max_steps)
        return response

    def _on_stop(self, request: StopTrial.Request, response: StopTrial.Response) -> StopTrial.Response:
        response.success, response.message, response.trial_id = self.stop_trial(request.reason or "operator")
        return response

    def _on_label(self, request: LabelTrial.Request, response: LabelTrial.Response) -> LabelTrial.Response:
        response.accepted, response.message = self.label_trial(request.trial_id, request.success, request.note)
        return response

    def start_trial(self, instruction: str, task: str, setting: str, max_steps: int) -> tuple[bool, str, str]:
        instruction = " ".join(instruction.split())
        if not instruction:
            return False, "instruction is empty", ""
        if len(instruction) > self._max_instruction:
            return False, f"instruction has {len(instruction)} characters (> {self._max_instruction})", ""
        with self._lock:
            if self._trial is not None:
                return False, f"trial {self._trial['trial_id']} is running: stop it first", self._trial["trial_id"]
            self._counter += 1
            trial_id = SAFE_NAME.sub("_", f"{time.strftime('%Y%m%d-%H%M%S')}_{task or 'trial'}_{self._counter:03d}")
            trial_dir = self._output_dir / trial_id
            trial = {"trial_id": trial_id, "instruction": instruction, "task": task, "setting": setting,
                     "max_steps": int(max_steps), "steps": 0, "started_at": time.time()}
            try:
                trial_dir.mkdir(parents=True)
                self._write_metadata(trial_dir, trial)
                self._bag = TrialBag(trial_dir / "bag", self._typestore)
            except OSError as error:
                return False, f"cannot create {trial_dir}: {error}", ""
            self._trial = trial
        self._instruction_pub.publish(String(data=instruction))
        self.get_logger().info(f"trial {trial_id} started: '{instruction}'")
        return True, f"recording to {trial_dir}", trial_id

    def stop_trial(self, reason: str) -> tuple[bool, str, str]:
        with self._lock:
            if self._trial is None:
                return False, "no trial is running", ""
            bag, trial = self._bag, self._trial
            self._bag, self._trial = None, None
        self._instruction_pub.publish(String(data=""))  # the policy goes idle before the bag closes
        trial.update(stopped_at=time.time(), stop_reason=reason, messages=bag.message_counts)
        self._last_stopped = trial["trial_id"]
        try:
            bag.close()
            self._write_metadata(self._output_dir / trial["trial_id"], trial)
        except OSError as error:
            self.get_logger().error(f"trial {trial['trial_id']}: could not finish its files: {error}")
            return False, f"stopped, but writing the recording failed: {error}", trial["trial_id"]
        self.get_logger().info(f"trial {trial['trial_id']} stopped ({reason}) after {trial['steps']} steps")
        return True, f"stopped after {trial['steps']} steps ({reason})", trial["trial_id"]

    def label_trial(self, trial_id: str, success: bool, note: str) -> tuple[bool, str]:
        trial_id = trial_id or self._last_stopped
        if not trial_id:
            return False, "no trial has been stopped yet: give a trial_id"
        if SAFE_NAME.search(trial_id) or trial_id in (".", ".."):
            return False, f"invalid trial_id '{trial_id}'"
        path = self._output_dir / trial_id / "trial.json"
        if not path.is_file():
            return False, f"unknown trial '{trial_id}' (no {path})"
        with self._lock:
            if self._trial is not None and self._trial["trial_id"] == trial_id:
                return False, f"trial {trial_id} is still running: stop it first"
        metadata = self.trial_metadata(trial_id)
        metadata["label"] = {"success": bool(success), "note": note, "labelled_at": time.time()}
        self._write_metadata(path.parent, metadata)
        return True, f"labelled {trial_id}: {'success' if success else 'failure'}"

    @staticmethod
    def _write_metadata(trial_dir: Path, metadata: dict) -> None:
        (trial_dir / "trial.json").write_text(json.dumps(metadata, indent=2) + "\n")

    def destroy_node(self) -> None:
        if getattr(self, "_trial", None) is not None:
            self.stop_trial("shutdown")
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return spin_node(TrialRecorderNode, "trial_recorder", args)

if __name__ == "__main__":
    sys.exit(main())
