"""Crash safety of recorded trials over real DDS: a trial recorder killed with SIGKILL mid-trial (the policy
stops acting within about a lease, the bag is recoverable losing at most about a second of even a low-rate
recording), a plain instruction publisher that goes away (the policy keeps acting, as before), and a recording
that hits a file-size limit (the trial stops with the error, the policy is told to go idle)."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from robovlms_io import qos
from robovlms_msgs.msg import PolicyStatus
from robovlms_msgs.srv import StartTrial
from robovlms_policy.trials.bag_recover import main as bag_recover
from robovlms_policy.vla.policy import VLAPolicy
from polling import wait_until
from test_policy_node import checkpoint, make_harness  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ros
SMALL_TOPICS = "['ee_command=robovlms_msgs/msg/EndEffectorCommand','policy_status=robovlms_msgs/msg/PolicyStatus']"


def start_recorder(output_dir: Path, *params: str, preexec_fn=None) -> subprocess.Popen:
    args = [sys.executable, "-m", "robovlms_policy.trials.trial_recorder_node", "--ros-args", "-p",
            f"output_dir:={output_dir}"]
    for param in params:
        args += ["-p", param]
    return subprocess.Popen(args, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec_fn)


def start_trial(node: Node, instruction: str, process: subprocess.Popen) -> str:
    client = node.create_client(StartTrial, "trial/start")
    assert client.wait_for_service(timeout_sec=30.0), process.stdout.read() if process.poll() else "no service"
    future = client.call_async(StartTrial.Request(instruction=instruction, task="lift_red_block"))
    assert wait_until(future.done, timeout=20.0) and future.result().success, future.result()
    return future.result().trial_id


def test_a_killed_recorder_stops_the_policy_and_leaves_a_recoverable_bag(make_harness, checkpoint, tmp_path):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint))
    process = start_recorder(tmp_path, f"record_topics:={SMALL_TOPICS}")
    try:
        trial_id = start_trial(harness.io, "lift the red block", process)
        assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)
        running_from = time.monotonic()
        time.sleep(3.0)  # ~30 commands and status messages: far less than one 1 MiB MCAP chunk
        # A live owner keeps its lease: the policy acted the whole time (not only for the first lease).
        assert harness.latest_state() == PolicyStatus.STATE_RUNNING
        assert not [t for t, s in harness.statuses if t > running_from and s.state != PolicyStatus.STATE_RUNNING]
        assert len([t for t, _ in harness.commands if t > running_from + 2.0]) >= 5
        killed_at_wall, killed_at = time.time(), time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_IDLE, timeout=10.0)
        idle_after = next(t for t, s in harness.statuses if t > killed_at and s.state == PolicyStatus.STATE_IDLE)
        print(f"policy idle {idle_after - killed_at:.2f} s after SIGKILL")
        assert idle_after - killed_at < 3.0  # about the 0.5 s lease; loose for a loaded machine
        commands_after = [t for t, _ in harness.commands if t > idle_after + 0.3]
        assert not commands_after, "the policy kept commanding after its trial's owner died"
    finally:
        if process.poll() is None:
            process.kill()
    bag = tmp_path / trial_id / "bag"
    assert not (bag / "metadata.yaml").exists()
    assert bag_recover([str(bag)]) == 0
    assert (bag.with_name("bag.damaged") / "bag.mcap").is_file()
    with Reader(bag) as reader:
        stamps = [t for c, t, _ in reader.messages() if c.topic == "/ee_command"]
    assert len(stamps) >= 10
    print(f"last recovered command {killed_at_wall - stamps[-1] / 1e9:.2f} s before the kill")
    assert stamps[-1] / 1e9 >= killed_at_wall - 1.0
    assert bag_recover([str(bag)]) == 1  # intact now: nothing to do


def test_a_plain_instruction_publisher_going_away_leaves_the_policy_acting(make_harness, checkpoint, ros_context):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint))
    for durability in (qos.RELIABLE, qos.LATCHED):  # as `ros2 topic pub` (volatile) or a latched publisher
        publisher_node = Node("plain_instruction_publisher", context=ros_context)
        publisher = publisher_node.create_publisher(String, "/instruction", durability)
        instruction = f"press the button {len(harness.statuses)}"
        assert wait_until(lambda: publisher.get_subscription_count() >= 1)
        publisher.publish(String(data=instruction))
        assert harness.wait_for(lambda: harness.statuses and harness.statuses[-1][1].instruction == instruction
                                and harness.latest_state() == PolicyStatus.STATE_RUNNING)
        publisher_node.destroy_node()
        gone = time.monotonic()
        time.sleep(1.5)
        assert all(s.state == PolicyStatus.STATE_RUNNING for t, s in harness.statuses if t > gone + 0.2)


def _file_size_limit(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_a_failing_recording_stops_the_trial_and_idles_the_policy(ros_context, tmp_path):
    # A full disk stood in by a file-size limit on the recorder: its writes fail with EFBIG as they would with
    # ENOSPC. The recording is a reliable bulk topic, so that every message reaches the writer.
    process = start_recorder(tmp_path, "start_timeout_s:=0.0", "record_topics:=['bulk=std_msgs/msg/String']",
                             preexec_fn=_file_size_limit(4 << 20))
    node = Node("failing_recording_test", context=ros_context)
    heard: list[str] = []
    node.create_subscription(String, "/instruction", lambda m: heard.append(m.data), qos.LATCHED)
    bulk = node.create_publisher(String, "bulk", qos.RELIABLE)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        trial_id = start_trial(node, "open the drawer", process)
        assert wait_until(lambda: heard[-1:] == ["open the drawer"])
        assert wait_until(lambda: bulk.get_subscription_count() >= 1)
        for _ in range(100):  # 200 kB each: the 4 MiB limit is passed within about a second
            bulk.publish(String(data="x" * 200_000))
            time.sleep(0.05)
            if heard[-1:] == [""]:
                break
        if not wait_until(lambda: heard[-1:] == [""], timeout=10.0):
            process.send_signal(signal.SIGINT)
            pytest.fail(f"the policy was not told to stop: {process.communicate(timeout=15)[0][-3000:]}")
        assert process.poll() is None, "the recorder died instead of stopping the trial"
        info = json.loads((tmp_path / trial_id / "trial.json").read_text())
        assert info["stop_reason"].startswith("recording failed:") and "too large" in info["stop_reason"].lower()
        assert "robovlms-bag-recover" in info["bag_error"]  # the bag could not be closed either
    finally:
        executor.shutdown()
        spin.join(timeout=5)
        node.destroy_node()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    bag = tmp_path / trial_id / "bag"
    assert bag_recover([str(bag), "--out", str(tmp_path / "recovered")]) == 0
    with Reader(tmp_path / "recovered") as reader:
        assert 5 <= sum(c.msgcount for c in reader.connections) <= 21  # what fitted under 4 MiB
