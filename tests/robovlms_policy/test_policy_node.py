"""Policy node over real DDS with a tiny checkpoint: cadence, freshness holds, bad input, resets, slow models."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ament_index_python.packages import get_package_prefix
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String

from robovlms_msgs.msg import ActionChunk, EndEffectorCommand, PolicyStatus
from robovlms_io.images import rgb_to_image_msg
from robovlms_io.qos import SENSOR_SUBSCRIPTION as IMAGE_QOS
from robovlms_policy.node.policy_node import WARM_UP_INSTRUCTION, PolicyNode
from robovlms_policy.vla.init_checkpoint import main as init_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from polling import wait_until

pytestmark = pytest.mark.ros

STATIC_TOPIC, WRIST_TOPIC = "/rgb/image_raw", "/camera/camera/color/image_raw"
STATIC_RGB = np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8)
WRIST_RGB = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny_policy_head"
    assert init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", str(out)]) in (0, None)
    return out


class SlowPolicy:
    """A real tiny policy whose forward pass takes at least ``delay_s`` (a model slower than the tick)."""

    def __init__(self, policy: VLAPolicy, delay_s: float) -> None:
        self.inner, self.delay_s, self.resets = policy, delay_s, []
        self.camera_names = policy.camera_names

    def reset(self, instruction: str) -> None:
        self.resets.append(instruction)
        self.inner.reset(instruction)

    def step(self, images, proprio=None):
        time.sleep(self.delay_s)
        return self.inner.step(images, proprio)


class ExplodingPolicy(SlowPolicy):
    """Fails (slowly) on the instruction 'explode'; fine on any other."""

    def step(self, images, proprio=None):
        if self.resets[-1] == "explode":
            time.sleep(self.delay_s)
            raise RuntimeError("boom")
        return self.inner.step(images, proprio)


class NaNPolicy(SlowPolicy):
    def step(self, images, proprio=None):
        output = self.inner.step(images, proprio)
        output.arm[:] = np.nan
        return output


class Harness:
    """Cameras, an operator and a recorder around one PolicyNode, spun on a background executor."""

    def __init__(self, context, policy, **parameters) -> None:
        overrides = [Parameter(k, value=v) for k, v in parameters.items()]
        self.node = PolicyNode(policy=policy, context=context, parameter_overrides=overrides)
        self.io = Node("policy_test_io", context=context)
        self.static_pub = self.io.create_publisher(Image, STATIC_TOPIC, IMAGE_QOS)
        self.wrist_pub = self.io.create_publisher(Image, WRIST_TOPIC, IMAGE_QOS)
        self.instruction_pub = self.io.create_publisher(String, "/instruction", 10)
        self.commands: list[tuple[float, EndEffectorCommand]] = []
        self.statuses: list[tuple[float, PolicyStatus]] = []
        self.chunks: list[ActionChunk] = []
        self.io.create_subscription(EndEffectorCommand, "ee_command",
                                    lambda m: self.commands.append((time.monotonic(), m)), 10)
        self.io.create_subscription(PolicyStatus, "policy_status",
                                    lambda m: self.statuses.append((time.monotonic(), m)), 10)
        self.io.create_subscription(ActionChunk, "action_chunk", self.chunks.append, 10)
        self.static_on = self.wrist_on = True
        self.static_msg = rgb_to_image_msg(STATIC_RGB, "bgra8", "rgb_camera_link")
        self.wrist_msg = rgb_to_image_msg(WRIST_RGB, "rgb8", "camera_color_optical_frame")
        self.io.create_timer(1 / 30, self._publish_frames)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.io)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _publish_frames(self) -> None:
        if self.static_on:
            self.static_pub.publish(self.static_msg)
        if self.wrist_on:
            self.wrist_pub.publish(self.wrist_msg)

    def instruct(self, text: str) -> None:
        self.instruction_pub.publish(String(data=text))

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        return wait_until(predicate, timeout)

    def latest_state(self) -> int | None:
        return self.statuses[-1][1].state if self.statuses else None

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5)
        self.node.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def make_harness(ros_context):
    harnesses = []

    def build(policy, **parameters) -> Harness:
        harnesses.append(Harness(ros_context, policy, **parameters))
        return harnesses[-1]

    yield build
    for harness in harnesses:
        harness.close()


def is_hold(command: EndEffectorCommand) -> bool:
    deltas = [command.delta_position.x, command.delta_position.y, command.delta_position.z,
              command.delta_rotation.x, command.delta_rotation.y, command.delta_rotation.z]
    return all(v == 0.0 for v in deltas) and command.gripper == EndEffectorCommand.GRIPPER_UNCHANGED


def stamp_seconds(command: EndEffectorCommand) -> float:
    return command.header.stamp.sec + command.header.stamp.nanosec * 1e-9


def assert_rate(commands: list[EndEffectorCommand], window_s: float, hz: float = 10.0, tolerance: float = 0.5):
    stamps = np.array([stamp_seconds(c) for c in commands])
    gaps = np.diff(stamps)
    detail = f"{len(stamps)} commands in {window_s} s, largest gaps {np.sort(gaps)[-3:].round(3)} s"
    assert len(stamps) >= window_s * (hz - tolerance), detail
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert hz - tolerance <= rate <= hz + tolerance, f"command rate {rate:.2f} Hz; {detail}"


def commands_between(harness: Harness, start: float, end: float) -> list[EndEffectorCommand]:
    return [m for t, m in harness.commands if start <= t <= end]


def test_commands_at_control_rate_with_model_actions(make_harness, checkpoint):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint))
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING), "never started running"
    start = time.monotonic()
    time.sleep(5.0)
    window = commands_between(harness, start, start + 5.0)
    assert_rate(window, 5.0)
    moving = [c for c in window if not is_hold(c)]
    assert moving, "no model action was published"
    assert all(c.header.frame_id == "base_link" and abs(c.period.nanosec * 1e-9 - 0.1) < 1e-9 for c in window)
    assert all(0.0 <= c.gripper <= 1.0 for c in moving)
    assert harness.chunks and len(harness.chunks[-1].commands) == 10
    status = harness.statuses[-1][1]
    assert status.instruction == "open the drawer" and list(status.camera_names) == ["static", "wrist"]
    assert all(0.0 <= age < 0.3 for age in status.frame_ages) and status.model_latency > 0.0


def test_stale_camera_holds_within_two_ticks_and_recovers(make_harness, checkpoint):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint), max_frame_age_s=0.3)
    harness.instruct("press the button")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)
    harness.wrist_on = False
    stopped = time.monotonic()
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_HOLDING, timeout=5.0)
    held_at = next(t for t, s in harness.statuses if t > stopped and s.state == PolicyStatus.STATE_HOLDING)
    # Stale after 0.3 s without frames, then at most 2 ticks (plus the last frame's 1/30 s and DDS delivery).
    assert held_at - stopped <= 0.3 + 2 * 0.1 + 0.1, f"hold came {held_at - stopped:.2f} s after the camera stopped"
    time.sleep(0.5)
    reason = harness.statuses[-1][1].hold_reason
    assert "wrist" in reason and "old" in reason
    assert all(is_hold(c) for c in commands_between(harness, held_at + 0.05, time.monotonic()))
    harness.wrist_on = True
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING, timeout=5.0)


@pytest.mark.parametrize("kind", ["unknown_encoding", "sixteen_bit", "short_data", "step_too_small",
                                  "zero_size", "huge_declared_size"])
def test_malformed_images_are_rejected_without_crash(make_harness, checkpoint, kind):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint))
    bad = rgb_to_image_msg(STATIC_RGB, "bgra8", "rgb_camera_link")
    if kind == "unknown_encoding":
        bad.encoding = "yuv422"
    elif kind == "sixteen_bit":
        bad.encoding, bad.step = "16UC1", bad.width * 2
    elif kind == "short_data":
        bad.data = bytes(bad.data)[: len(bad.data) // 2]
    elif kind == "step_too_small":
        bad.step = bad.width * 3
    elif kind == "zero_size":
        bad.width = bad.height = bad.step = 0
        bad.data = b""
    else:
        bad.width, bad.height, bad.step = 100_000, 100_000, 400_000
    harness.static_msg = bad
    harness.instruct("open the drawer")
    slot = harness.node.core.cameras["static"]
    assert harness.wait_for(lambda: slot.rejected >= 3, timeout=10.0), "malformed frames were not rejected"
    count = len(harness.commands)
    assert harness.wait_for(lambda: len(harness.commands) >= count + 5, timeout=5.0), "node stopped ticking"
    assert harness.latest_state() == PolicyStatus.STATE_HOLDING
    assert "rejected" in harness.statuses[-1][1].hold_reason
    assert all(is_hold(m) for _, m in harness.commands)
    harness.static_msg = rgb_to_image_msg(STATIC_RGB, "bgra8", "rgb_camera_link")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)


def test_new_instruction_resets_history(make_harness, checkpoint):
    policy = SlowPolicy(VLAPolicy.from_checkpoint(checkpoint), delay_s=0.0)
    harness = make_harness(policy)
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: len(harness.chunks) >= 5), "fewer than 5 chunks for the first instruction"
    harness.instruct("open the drawer")  # repeated (as `ros2 topic pub` does): no reset
    time.sleep(0.3)
    assert policy.resets == [WARM_UP_INSTRUCTION, "open the drawer"]
    chunks_before = len(harness.chunks)
    harness.instruct("close the drawer")
    assert harness.wait_for(lambda: policy.resets[-1:] == ["close the drawer"] and len(harness.chunks) > chunks_before)
    # The first chunk after the reset is what a fresh policy computes from a single frame.
    fresh = VLAPolicy.from_checkpoint(checkpoint)
    fresh.reset("close the drawer")
    expected = fresh.step({"static": STATIC_RGB, "wrist": WRIST_RGB})
    first = next(c for c in harness.chunks[chunks_before:]
                 if np.allclose(c.commands[0].delta_position.x, expected.arm[0, 0], atol=1e-6))
    got = np.array([[c.delta_position.x, c.delta_position.y, c.delta_position.z,
                     c.delta_rotation.x, c.delta_rotation.y, c.delta_rotation.z] for c in first.commands])
    np.testing.assert_allclose(got, expected.arm, atol=1e-6)


def test_slow_model_still_publishes_on_time(make_harness, checkpoint):
    policy = SlowPolicy(VLAPolicy.from_checkpoint(checkpoint), delay_s=0.35)
    harness = make_harness(policy)
    harness.instruct("lift the red block")
    start = time.monotonic()
    time.sleep(5.0)
    window = commands_between(harness, start, start + 5.0)
    assert_rate(window, 5.0)
    assert any(not is_hold(c) for c in window), "the slow model's chunks were never executed"
    assert max(s.model_latency for _, s in harness.statuses) >= 0.35
    assert harness.statuses[-1][1].missed_ticks <= 1


def test_non_finite_model_output_never_leaves_the_node(make_harness, checkpoint):
    harness = make_harness(NaNPolicy(VLAPolicy.from_checkpoint(checkpoint), delay_s=0.0))
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_ERROR)
    time.sleep(0.5)
    assert "non-finite" in harness.statuses[-1][1].hold_reason
    assert all(is_hold(m) for _, m in harness.commands)
    assert not harness.chunks


def test_empty_and_oversized_instructions(make_harness, checkpoint):
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint), max_instruction_length=64)
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)
    harness.instruct("   \n\t ")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_IDLE)
    time.sleep(0.3)
    assert is_hold(harness.commands[-1][1]) and harness.statuses[-1][1].instruction == ""
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)
    harness.instruct("x" * 65)
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_IDLE)
    assert "rejected" in harness.statuses[-1][1].hold_reason and "65" in harness.statuses[-1][1].hold_reason


def test_instruction_the_model_cannot_take_holds_with_an_error(make_harness, checkpoint):
    # Within the node's character limit but over the tiny checkpoint's 64 tokens.
    harness = make_harness(VLAPolicy.from_checkpoint(checkpoint))
    harness.instruct("open the drawer " * 10)
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_ERROR)
    assert "tokens" in harness.statuses[-1][1].hold_reason
    assert all(is_hold(m) for _, m in harness.commands)
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)


def test_error_of_a_replaced_instruction_does_not_latch(make_harness, checkpoint):
    harness = make_harness(ExplodingPolicy(VLAPolicy.from_checkpoint(checkpoint), delay_s=0.5))
    harness.instruct("explode")
    time.sleep(0.25)  # its forward pass is running (and will fail) when the next instruction arrives
    harness.instruct("open the drawer")
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING)
    time.sleep(0.5)
    assert all(s.state != PolicyStatus.STATE_ERROR for t, s in harness.statuses[-5:])


@pytest.mark.parametrize("name,value", [("control_rate_hz", 0.0), ("max_frame_age_s", -1.0),
                                        ("max_instruction_length", 0), ("open_loop_steps", 0)])
def test_bad_parameters_are_refused(ros_context, checkpoint, name, value):
    with pytest.raises(ValueError, match=name):
        PolicyNode(policy=VLAPolicy.from_checkpoint(checkpoint), context=ros_context,
                   parameter_overrides=[Parameter(name, value=value)])


def test_bad_checkpoint_exits_with_a_clear_message(tmp_path):
    executable = Path(get_package_prefix("robovlms_policy")) / "lib" / "robovlms_policy" / "policy_node"
    result = subprocess.run([str(executable), "--ros-args", "-p", f"checkpoint:={tmp_path / 'missing'}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "policy_node:" in result.stderr and "missing" in result.stderr
    assert "Traceback" not in result.stderr


class RecordingPolicy(SlowPolicy):
    """A real tiny proprioceptive policy that keeps the robot states it was given."""

    def __init__(self, policy: VLAPolicy) -> None:
        super().__init__(policy, 0.0)
        self.config, self.image_size, self.states = policy.config, policy.image_size, []

    def step(self, images, proprio=None):
        self.states.append(proprio)
        return self.inner.step(images, proprio)


def test_proprioception_comes_from_ee_pose_and_joint_states(make_harness, tmp_path):
    """A checkpoint trained with the robot state gets it from the driver's topics, stale-checked like images."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    out = tmp_path / "proprio"
    from robovlms_policy.vla.init_checkpoint import create_checkpoint
    create_checkpoint(out, "paligemma", "policy_head", window=4, chunk=3, proprio_dim=10,
                      proprio_layout="ee_pose_gripper")
    policy = RecordingPolicy(VLAPolicy.from_checkpoint(out))
    harness = make_harness(policy, max_state_age_s=0.3)
    pose_pub = harness.io.create_publisher(PoseStamped, "ee_pose", 10)
    joints_pub = harness.io.create_publisher(JointState, "joint_states", 10)
    harness.instruct("lift the red block")
    assert harness.wait_for(lambda: harness.statuses and "no ee_pose yet" in harness.statuses[-1][1].hold_reason)
    assert all(is_hold(m) for _, m in harness.commands)

    def publish_state() -> None:
        pose = PoseStamped()
        pose.header.frame_id = "base_link"
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = 0.45, -0.05, 0.2
        pose.pose.orientation.x, pose.pose.orientation.w = 1.0, 0.0  # tool pointing down
        pose_pub.publish(pose)
        joints_pub.publish(JointState(name=[f"joint_{i}" for i in range(1, 8)] + ["robotiq_85_left_knuckle_joint"],
                                      position=[0.0] * 7 + [0.4]))

    state_timer = harness.io.create_timer(0.05, publish_state)
    assert harness.wait_for(lambda: harness.latest_state() == PolicyStatus.STATE_RUNNING), \
        harness.statuses[-1][1].hold_reason
    proprio = [s for s in policy.states if s is not None and s[0] == 0.45][-1]
    np.testing.assert_allclose(proprio, [0.45, -0.05, 0.2, 1, 0, 0, 0, -1, 0, 0.5], atol=1e-9)
    harness.io.destroy_timer(state_timer)  # the driver stops publishing: the node holds again
    assert harness.wait_for(lambda: "ee_pose is" in harness.statuses[-1][1].hold_reason
                            and harness.latest_state() == PolicyStatus.STATE_HOLDING)
