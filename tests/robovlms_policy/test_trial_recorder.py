"""Trial recorder over real DDS: services, instruction hand-off (latched, confirmed by the policy's status), MCAP
bags that read back, labels, and shutdown by signal mid-trial."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image
from std_msgs.msg import String

from robovlms_io import qos
from robovlms_io.images import rgb_to_image_msg
from robovlms_msgs.msg import EndEffectorCommand, PolicyStatus
from robovlms_msgs.srv import LabelTrial, StartTrial, StopTrial
from robovlms_policy.trials.bag_format import make_typestore
from robovlms_policy.trials.trial_recorder_node import TrialRecorderNode
from polling import wait_until

pytestmark = pytest.mark.ros


class Bench:
    """The recorder plus the test's side of the graph: a node that records what reaches /instruction and, standing
    in for the policy, reports acting on the latest instruction in a PolicyStatus every 0.1 s."""

    def __init__(self, context, output_dir: Path, policy_acts: bool = True, start_timeout_s: float = 5.0) -> None:
        self.recorder = TrialRecorderNode(context=context, parameter_overrides=[
            Parameter("output_dir", value=str(output_dir)), Parameter("start_timeout_s", value=start_timeout_s)])
        self.io = Node("recorder_test_io", context=context)
        self.instructions: list[str] = []
        self.io.create_subscription(String, "/instruction", lambda m: self.instructions.append(m.data), qos.LATCHED)
        if policy_acts:
            status_pub = self.io.create_publisher(PolicyStatus, "policy_status", qos.RELIABLE)
            self.io.create_timer(0.1, lambda: status_pub.publish(self._status()))
        self.command_pub = self.io.create_publisher(EndEffectorCommand, "ee_command", 10)
        self.image_pub = self.io.create_publisher(Image, "/rgb/image_raw", 10)
        self.clients = {name: self.io.create_client(kind, f"trial/{name}")
                        for name, kind in (("start", StartTrial), ("stop", StopTrial), ("label", LabelTrial))}
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.recorder)
        self.executor.add_node(self.io)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        for client in self.clients.values():
            assert client.wait_for_service(timeout_sec=10.0)

    def _status(self) -> PolicyStatus:
        latest = self.instructions[-1] if self.instructions else ""
        status = PolicyStatus(state=PolicyStatus.STATE_RUNNING if latest else PolicyStatus.STATE_IDLE,
                              instruction=latest)
        status.header.stamp = self.io.get_clock().now().to_msg()
        return status

    def call(self, name: str, request):
        future = self.clients[name].call_async(request)
        assert wait_until(future.done, timeout=15.0, interval=0.01), f"trial/{name} did not answer"
        return future.result()

    def publish_commands(self, count: int) -> list[EndEffectorCommand]:
        sent = []
        for i in range(count):
            command = EndEffectorCommand(gripper=0.25 * (i % 4))
            command.delta_position.x = 0.001 * i
            command.header.frame_id = "base_link"
            self.command_pub.publish(command)
            sent.append(command)
            time.sleep(0.02)
        return sent

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5)
        self.recorder.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def bench(ros_context, tmp_path):
    b = Bench(ros_context, tmp_path)
    yield b
    b.close()


def read_bag(bag_dir: Path, typestore) -> dict[str, list]:
    messages: dict[str, list] = {}
    with Reader(bag_dir) as reader:
        for connection, _, raw in reader.messages():
            messages.setdefault(connection.topic, []).append(typestore.deserialize_cdr(raw, connection.msgtype))
    return messages


def test_trial_is_recorded_to_mcap_and_labelled(bench, tmp_path):
    started = bench.call("start", StartTrial.Request(instruction="open  the drawer", task="open_drawer",
                                                     setting="default", max_steps=0))
    assert started.success, started.message
    assert wait_until(lambda: "open the drawer" in bench.instructions), "instruction was not handed to the policy"
    time.sleep(0.3)  # let discovery of the recorder's subscriptions complete
    sent = bench.publish_commands(20)
    image = rgb_to_image_msg(np.full((4, 6, 3), 7, np.uint8), "bgra8", "rgb_camera_link")
    bench.image_pub.publish(image)
    time.sleep(0.5)
    stopped = bench.call("stop", StopTrial.Request(reason="operator"))
    assert stopped.success and stopped.trial_id == started.trial_id
    assert wait_until(lambda: bench.instructions[-1:] == [""]), "the policy was not told to go idle"

    trial_dir = tmp_path / started.trial_id
    assert (trial_dir / "bag" / "metadata.yaml").is_file() and list((trial_dir / "bag").glob("*.mcap"))
    messages = read_bag(trial_dir / "bag", make_typestore([Path(__file__).parents[2] / "ros2_ws" / "src" /
                                                           "robovlms_msgs"]))
    commands = messages["/ee_command"]
    assert len(commands) == len(sent)
    assert [c.delta_position.x for c in commands] == pytest.approx([c.delta_position.x for c in sent])
    assert [c.gripper for c in commands] == pytest.approx([c.gripper for c in sent])
    assert messages["/instruction"][0].data == "open the drawer"
    assert messages["/rgb/image_raw"][0].encoding == "bgra8"
    metadata = json.loads((trial_dir / "trial.json").read_text())
    assert metadata["steps"] == 20 and metadata["stop_reason"] == "operator" and metadata["task"] == "open_drawer"

    labelled = bench.call("label", LabelTrial.Request(trial_id="", success=True, note="clean open"))
    assert labelled.accepted, labelled.message
    assert json.loads((trial_dir / "trial.json").read_text())["label"]["success"] is True


def test_max_steps_stops_the_trial(bench, tmp_path):
    started = bench.call("start", StartTrial.Request(instruction="press the button", task="press_button",
                                                     max_steps=5))
    assert started.success
    time.sleep(0.3)
    bench.publish_commands(12)
    assert wait_until(lambda: (tmp_path / started.trial_id / "trial.json").is_file()
                      and "stop_reason" in json.loads((tmp_path / started.trial_id / "trial.json").read_text()))
    metadata = json.loads((tmp_path / started.trial_id / "trial.json").read_text())
    assert metadata["stop_reason"] == "max_steps" and metadata["steps"] == 5
    assert bench.instructions[-1] == ""


def test_bad_requests_are_refused(bench):
    assert not bench.call("start", StartTrial.Request(instruction="   ")).success
    assert not bench.call("start", StartTrial.Request(instruction="x" * 513)).success
    assert not bench.call("stop", StopTrial.Request()).success
    assert not bench.call("label", LabelTrial.Request(trial_id="")).accepted
    assert not bench.call("label", LabelTrial.Request(trial_id="../../etc")).accepted
    assert not bench.call("label", LabelTrial.Request(trial_id="20990101-000000_nothing_001")).accepted
    first = bench.call("start", StartTrial.Request(instruction="lift the red block", task="lift_red"))
    assert first.success
    second = bench.call("start", StartTrial.Request(instruction="press the button"))
    assert not second.success and first.trial_id in second.message
    assert not bench.call("label", LabelTrial.Request(trial_id=first.trial_id, success=True)).accepted
    assert bench.call("stop", StopTrial.Request()).success


def test_start_fails_clearly_and_keeps_nothing_when_no_policy_acts(ros_context, tmp_path):
    bench = Bench(ros_context, tmp_path, policy_acts=False, start_timeout_s=1.0)
    try:
        started = bench.call("start", StartTrial.Request(instruction="open the drawer", task="open_drawer"))
        assert not started.success and started.trial_id == ""
        assert "no policy acted on 'open the drawer' within 1 s" in started.message
        assert "is policy_node running" in started.message
        assert bench.recorder.active_trial_id == "" and list(tmp_path.iterdir()) == []
        assert wait_until(lambda: bench.instructions[-1:] == [""]), "the policy was not told to go idle"
    finally:
        bench.close()


def test_a_policy_that_joins_after_the_start_still_gets_the_instruction(ros_context, tmp_path):
    bench = Bench(ros_context, tmp_path, policy_acts=False, start_timeout_s=0.0)
    try:
        assert bench.call("start", StartTrial.Request(instruction="press the button")).success
        late: list[str] = []
        joiner = Node("late_policy", context=ros_context)
        joiner.create_subscription(String, "/instruction", lambda m: late.append(m.data), qos.LATCHED)
        bench.executor.add_node(joiner)
        assert wait_until(lambda: late == ["press the button"]), late
        bench.executor.remove_node(joiner)
        joiner.destroy_node()
    finally:
        bench.close()


def run_recorder(output_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robovlms_policy.trials.trial_recorder_node", "--ros-args",
                             "-p", f"output_dir:={output_dir}", "-p", "start_timeout_s:=0.0"],
                            env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_trial_idles_the_policy_and_keeps_a_readable_interrupted_trial(ros_context, tmp_path,
                                                                                  stop_signal):
    process = run_recorder(tmp_path)
    io = Node("signal_test_io", context=ros_context)
    heard: list[str] = []
    io.create_subscription(String, "/instruction", lambda m: heard.append(m.data), qos.LATCHED)
    commands = io.create_publisher(EndEffectorCommand, "ee_command", 10)
    start = io.create_client(StartTrial, "trial/start")
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(io)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        assert start.wait_for_service(timeout_sec=30.0), process.stdout.read() if process.poll() else "no service"
        future = start.call_async(StartTrial.Request(instruction="lift the red block", task="lift_red_block"))
        assert wait_until(future.done, timeout=15.0) and future.result().success
        trial_dir = tmp_path / future.result().trial_id
        assert wait_until(lambda: heard[-1:] == ["lift the red block"])
        time.sleep(0.5)
        for i in range(15):
            commands.publish(EndEffectorCommand(gripper=0.0))
            time.sleep(0.02)
        time.sleep(0.3)
        process.send_signal(stop_signal)
        assert process.wait(timeout=20) == 0, process.stdout.read()
        assert wait_until(lambda: heard[-1:] == [""]), f"the policy was not idled: {heard}"
    finally:
        executor.shutdown()
        spin.join(timeout=5)
        io.destroy_node()
        if process.poll() is None:
            process.kill()
    info = json.loads((trial_dir / "trial.json").read_text())
    assert info["interrupted"] is True and info["stop_reason"] == "shutdown" and info["steps"] == 15
    assert info["stopped_at"] >= info["started_at"]
    assert (trial_dir / "bag" / "metadata.yaml").is_file()
    with Reader(trial_dir / "bag") as reader:  # a footer and an index: the rosbags reader opens it
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/ee_command"] == 15
