"""Trial recorder node: start / stop / label evaluation trials and record each one as a rosbag2 (MCAP).

Starting a trial opens a bag under ``output_dir/<trial_id>/bag``, writes into it the newest camera frames and
robot state received before the start (what the policy's first step sees), and publishes the instruction
(latched, so a policy that joins late still gets it); trial/start answers once the policy reports acting on it in its
PolicyStatus, or fails after ``start_timeout_s`` and discards the recording, so no trial is ever scored
against a policy that never saw its instruction. Stopping (by service, after ``max_steps`` commands, or on
shutdown: SIGINT, SIGTERM or an error, then marked interrupted; or when writing fails, e.g. a full disk)
publishes an empty instruction so the policy goes idle, closes the bag and writes ``trial.json``; labelling adds
the outcome to ``trial.json``. The instruction is published with a liveliness lease (``qos.TRIAL_INSTRUCTION``):
if this process is killed outright, the policy withdraws the trial's instruction within about half a second, and
the bag, flushed every ``FLUSH_INTERVAL_S``, is made whole again by ``robovlms-bag-recover``.
"""
from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from rclpy.time import Time
from std_msgs.msg import String

from robovlms_io import names, qos
from robovlms_io.instructions import normalize_instruction
from robovlms_io.params import declare_params, param
from robovlms_io.spin import run_nodes
from robovlms_msgs.msg import PolicyStatus
from robovlms_msgs.srv import LabelTrial, StartTrial, StopTrial
from robovlms_policy.trials.bag_format import (FLUSH_INTERVAL_S, LABEL_KEY, TRIAL_KEY, TrialBag, set_bag_custom_data,
                                               suite_typestore)

DEFAULT_TOPICS = (
    *(f"{camera.image_topic}=sensor_msgs/msg/Image" for camera in names.CAMERAS.values()),
    f"{names.INSTRUCTION_TOPIC}=std_msgs/msg/String",
    f"{names.COMMAND_TOPIC}=robovlms_msgs/msg/EndEffectorCommand",
    f"{names.CHUNK_TOPIC}=robovlms_msgs/msg/ActionChunk",
    f"{names.POLICY_STATUS_TOPIC}=robovlms_msgs/msg/PolicyStatus",
    f"{names.JOINT_STATES_TOPIC}=sensor_msgs/msg/JointState",
    f"{names.EE_POSE_TOPIC}=geometry_msgs/msg/PoseStamped",
    f"{names.DRIVER_STATUS_TOPIC}=robovlms_msgs/msg/DriverStatus",
    f"{names.EPISODE_INFO_TOPIC}=robovlms_msgs/msg/EpisodeInfo",
)
OUTCOMES = ("success", "failure", "partial")
# Inputs of the policy whose newest message opens every trial's bag (the state at the start).
SNAPSHOT_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/JointState", "geometry_msgs/msg/PoseStamped")
RECORD_DEPTH = 50  # messages a subscription buffers while the writer is busy
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TrialRecorderParams:
    """Parameters of `trial_recorder`."""

    output_dir: str = param("runs/trials", "Directory receiving one folder per trial (bag + trial.json).")
    record_topics: tuple = param(DEFAULT_TOPICS, "Topics recorded during a trial, as 'topic=package/msg/Type'.",
                                 check=(lambda v: all("=" in e for e in v), "entries of the form topic=package/msg/Type"))
    instruction_topic: str = param(names.INSTRUCTION_TOPIC, "Where the trial's instruction (and the empty stop "
                                                            "instruction) goes.")
    command_topic: str = param(names.COMMAND_TOPIC, "Commands counted as steps towards max_steps.")
    policy_status_topic: str = param(names.POLICY_STATUS_TOPIC, "PolicyStatus watched at trial/start: the trial "
                                                                "starts once the policy reports acting on it.")
    start_timeout_s: float = param(5.0, "s trial/start waits for the policy to act on the instruction before it "
                                        "fails; 0 = do not wait (no policy, e.g. teleoperated demonstrations).",
                                   low=0.0)
    max_instruction_length: int = param(512, "Longer instructions are refused.", low=1)
    compress: bool = param(False, "zstd-compress the bags' MCAP chunks (smaller camera recordings, more CPU).")


def _write_failure(write) -> str | None:
    """None when ``write()`` succeeds, else the stop reason (a full disk, a removed or read-only directory)."""
    try:
        write()
    except OSError as error:
        return f"recording failed: {error}"
    return None


def message_class(msgtype: str):
    """Import the Python class of 'package/msg/Type'."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class TrialRecorderNode(Node):
    """Serves trial/start, trial/stop and trial/label and records trials as MCAP bags."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("trial_recorder", **node_kwargs)
        p = self.params = declare_params(self, TrialRecorderParams)
        self._output_dir = Path(p.output_dir).expanduser().resolve()
        self._max_instruction = p.max_instruction_length
        self._typestore = suite_typestore()
        self._lock = threading.Lock()
        self._bag: TrialBag | None = None
        self._trial: dict | None = None
        self._last_stopped: str = ""
        self._counter = 0
        self._latest: dict[str, tuple[str, int, bytes]] = {}  # snapshot topic -> (type, receive time, CDR)

        self._command_topic = self.resolve_topic_name(p.command_topic)
        for entry in p.record_topics:
            topic, _, msgtype = entry.partition("=")
            self._subscribe(self.resolve_topic_name(topic.strip()), msgtype.strip())
        # Leased: if this process dies mid-trial (even by SIGKILL) the policy notices and stops acting.
        self._instruction_pub = self.create_publisher(String, p.instruction_topic, qos.TRIAL_INSTRUCTION)
        self.create_timer(qos.TRIAL_LEASE_ASSERT_S, self._instruction_pub.assert_liveliness,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self._waiting: tuple[str, Time, Future] | None = None  # instruction, trial start, confirmation
        self.create_subscription(PolicyStatus, p.policy_status_topic, self._on_policy_status, qos.RELIABLE)
        # trial/start awaits the policy's confirmation: in a group of its own, so that meanwhile the recording
        # subscriptions, the policy status and the timeout (all in the node's default group) keep running.
        self.create_service(StartTrial, "trial/start", self._on_start,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(StopTrial, "trial/stop", self._on_stop)
        self.create_service(LabelTrial, "trial/label", self._on_label)
        self.create_timer(FLUSH_INTERVAL_S, self._flush)
        self.get_logger().info(f"trial recorder ready: trials go to {self._output_dir}")

    def _subscribe(self, topic: str, msgtype: str) -> None:
        try:
            cls = message_class(msgtype)
        except (ValueError, ImportError, AttributeError) as error:
            raise ValueError(f"record_topics entry '{topic}={msgtype}': unknown message type ({error})") from error
        # Best effort accepts both best-effort camera drivers and reliable publishers.
        reliability = ReliabilityPolicy.BEST_EFFORT if msgtype == "sensor_msgs/msg/Image" else ReliabilityPolicy.RELIABLE
        self.create_subscription(cls, topic, lambda data, t=topic, m=msgtype: self._record(t, m, data),
                                 QoSProfile(depth=RECORD_DEPTH, reliability=reliability), raw=True)

    def _record(self, topic: str, msgtype: str, cdr: bytes) -> None:
        received_ns = self.get_clock().now().nanoseconds
        with self._lock:
            if msgtype in SNAPSHOT_TYPES:
                self._latest[topic] = (msgtype, received_ns, cdr)
            if self._bag is None:
                return
            stop_reason = _write_failure(lambda: self._bag.write(topic, msgtype, received_ns, cdr))
            if stop_reason is None and topic == self._command_topic:
                self._trial["steps"] += 1
                limit = self._trial["max_steps"]
                stop_reason = "max_steps" if limit and self._trial["steps"] >= limit else None
        if stop_reason:
            self._stop_for(stop_reason)

    def _flush(self) -> None:
        """Between messages too (a quiet recording), hand the bag's data to the OS (bag_format: crash safety)."""
        with self._lock:
            stop_reason = _write_failure(self._bag.flush) if self._bag is not None else None
        if stop_reason:
            self._stop_for(stop_reason)

    def _stop_for(self, reason: str) -> None:
        if reason != "max_steps":
            self.get_logger().error(f"{reason}: stopping the trial, the policy goes idle and the arm holds")
        self.stop_trial(reason)

    @property
    def active_trial_id(self) -> str:
        """Identifier of the trial being recorded, empty when none is."""
        with self._lock:
            return self._trial["trial_id"] if self._trial is not None else ""

    def trial_metadata(self, trial_id: str) -> dict:
        """The stored trial.json of a trial."""
        return json.loads((self._output_dir / trial_id / "trial.json").read_text())

    # --- services ---------------------------------------------------------------------------------------------

    async def _on_start(self, request: StartTrial.Request, response: StartTrial.Response) -> StartTrial.Response:
        # A coroutine: while it awaits the policy's confirmation the executor keeps running every other callback
        # (in make demo, the policy node itself shares this executor thread).
        started_at = self.get_clock().now()
        ok, message, trial_id = self.start_trial(request.instruction, request.task, request.setting,
                                                 request.max_steps)
        if ok and self.params.start_timeout_s > 0:
            ok, message = await self._policy_acts(normalize_instruction(request.instruction), started_at, trial_id)
            trial_id = trial_id if ok else ""
        response.success, response.message, response.trial_id = ok, message, trial_id
        return response

    async def _policy_acts(self, instruction: str, since: Time, trial_id: str) -> tuple[bool, str]:
        """Wait until a PolicyStatus stamped after ``since`` reports acting on ``instruction``; on timeout the
        trial is discarded (the policy goes idle, the recording is removed)."""
        future = Future()
        self._waiting = (instruction, since, future)
        timer = self.create_timer(self.params.start_timeout_s, lambda: future.done() or future.set_result(False))
        try:
            acted = await future
        finally:
            self.destroy_timer(timer)
            self._waiting = None
        if acted:
            return True, f"recording to {self._output_dir / trial_id}; the policy acts on '{instruction}'"
        self.discard_trial(trial_id)
        return False, (f"no policy acted on '{instruction}' within {self.params.start_timeout_s:g} s (no "
                       f"PolicyStatus on {self.params.policy_status_topic} reported it): is policy_node running? "
                       "The trial was discarded")

    def _on_policy_status(self, msg: PolicyStatus) -> None:
        waiting = self._waiting
        if waiting is None or waiting[2].done():
            return
        instruction, since, future = waiting
        acting = msg.state in (PolicyStatus.STATE_RUNNING, PolicyStatus.STATE_HOLDING)
        if acting and msg.instruction == instruction and Time.from_msg(msg.header.stamp) >= since:
            future.set_result(True)

    def _on_stop(self, request: StopTrial.Request, response: StopTrial.Response) -> StopTrial.Response:
        response.success, response.message, response.trial_id = self.stop_trial(request.reason or "operator")
        return response

    def _on_label(self, request: LabelTrial.Request, response: LabelTrial.Response) -> LabelTrial.Response:
        response.accepted, response.message = self.label_trial(request.trial_id, request.success, request.note,
                                                               request.outcome)
        return response

    def start_trial(self, instruction: str, task: str, setting: str, max_steps: int) -> tuple[bool, str, str]:
        instruction = normalize_instruction(instruction)
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
                self._bag = TrialBag(trial_dir / "bag", self._typestore, compress=self.params.compress)
                # The newest frame and robot state from before the start: what the policy's first step sees.
                for topic, (msgtype, stamp_ns, cdr) in sorted(self._latest.items(), key=lambda item: item[1][1]):
                    self._bag.write(topic, msgtype, stamp_ns, cdr)
            except OSError as error:
                return False, f"cannot create {trial_dir}: {error}", ""
            self._trial = trial
        self._instruction_pub.publish(String(data=instruction))
        self.get_logger().info(f"trial {trial_id} started: '{instruction}'")
        return True, f"recording to {trial_dir}", trial_id

    def set_output_dir(self, directory: Path) -> None:
        """Record the next trials into ``directory`` (the trial manager's run directory)."""
        with self._lock:
            if self._trial is not None:
                raise ValueError(f"trial {self._trial['trial_id']} is running: stop it first")
            self._output_dir = Path(directory).expanduser().resolve()

    def annotate_trial(self, trial_id: str, metadata: dict) -> None:
        """Add ``metadata`` (plan cell, seed, checkpoint) to the running trial's trial.json and, at stop, its bag."""
        with self._lock:
            if self._trial is None or self._trial["trial_id"] != trial_id:
                raise ValueError(f"trial {trial_id} is not the running trial")
            self._trial.update(metadata)
            self._write_metadata(self._output_dir / trial_id, self._trial)

    def discard_trial(self, trial_id: str) -> None:
        """Stop a trial that never started properly and remove its files (unless it was stopped meanwhile)."""
        if self.active_trial_id != trial_id:
            return
        self.stop_trial("discarded: the policy did not act on the instruction")
        shutil.rmtree(self._output_dir / trial_id, ignore_errors=True)
        self.get_logger().warning(f"trial {trial_id} discarded: no policy acted on its instruction")

    def stop_trial(self, reason: str, interrupted: bool = False) -> tuple[bool, str, str]:
        with self._lock:
            if self._trial is None:
                return False, "no trial is running", ""
            bag, trial = self._bag, self._trial
            self._bag, self._trial = None, None
        self._instruction_pub.publish(String(data=""))  # the policy goes idle before the bag closes
        trial.update(stopped_at=time.time(), stop_reason=reason, interrupted=interrupted,
                     messages=bag.message_counts)
        self._last_stopped = trial["trial_id"]
        try:
            bag.set_custom_data(TRIAL_KEY, json.dumps(trial))
            bag.close()
        except OSError as error:  # the bag keeps what was flushed: robovlms-bag-recover makes it whole
            trial["bag_error"] = f"closing the bag failed: {error}; recover it with robovlms-bag-recover"
        try:
            self._write_metadata(self._output_dir / trial["trial_id"], trial)
        except OSError as error:
            trial["bag_error"] = f"{trial.get('bag_error', '')} writing trial.json failed: {error}".strip()
        if "bag_error" in trial:
            self.get_logger().error(f"trial {trial['trial_id']}: {trial['bag_error']}")
            return False, f"stopped, but finishing the recording failed: {trial['bag_error']}", trial["trial_id"]
        self.get_logger().info(f"trial {trial['trial_id']} stopped ({reason}) after {trial['steps']} steps")
        return True, f"stopped after {trial['steps']} steps ({reason})", trial["trial_id"]

    def label_trial(self, trial_id: str, success: bool, note: str, outcome: str = "") -> tuple[bool, str]:
        outcome = outcome.strip().lower() or ("success" if success else "failure")
        if outcome not in OUTCOMES or (outcome == "success") != bool(success):
            return False, f"outcome '{outcome}' must be one of {OUTCOMES} and agree with success={bool(success)}"
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
        metadata["label"] = {"success": bool(success), "outcome": outcome, "note": note, "labelled_at": time.time()}
        self._write_metadata(path.parent, metadata)
        set_bag_custom_data(path.parent / "bag", LABEL_KEY, json.dumps(metadata["label"]))
        return True, f"labelled {trial_id}: {outcome}"

    @staticmethod
    def _write_metadata(trial_dir: Path, metadata: dict) -> None:
        # Atomic: readers (the trial manager, a resume after a crash) never see a half-written file.
        tmp = trial_dir / "trial.json.tmp"
        tmp.write_text(json.dumps(metadata, indent=2) + "\n")
        tmp.replace(trial_dir / "trial.json")

    def destroy_node(self) -> None:
        # Shut down with a trial running (SIGINT, SIGTERM, an error; robovlms_io.spin destroys the nodes while
        # the context is still valid): idle the policy, close the bag, keep the trial marked interrupted.
        if getattr(self, "_trial", None) is not None:
            self.stop_trial("shutdown", interrupted=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("trial_recorder", TrialRecorderNode, args)

if __name__ == "__main__":
    sys.exit(main())
