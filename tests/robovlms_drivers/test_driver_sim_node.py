"""The Kinova driver node on the sim backend, over real DDS: commanded deltas move the MuJoCo twin's
end effector, command loss and e-stop stop it, bad commands are refused while the arm holds."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from builtin_interfaces.msg import Duration  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robovlms_io.rotations import quaternion_to_matrix  # noqa: E402
from robovlms_drivers.kinova.driver_node import KinovaDriverNode  # noqa: E402
from robovlms_twin.sim_backend import SimBackend  # noqa: E402
from robovlms_msgs.msg import DriverStatus, EndEffectorCommand  # noqa: E402
from polling import wait_until  # noqa: E402

STILL_TOLERANCE = 0.001  # m an arm that holds may drift (servo settling)


class DriverHarness:
    """A driver on its own twin plus a client node, spinning on a background executor."""

    def __init__(self, context, overrides: dict | None = None) -> None:
        self.backend = SimBackend(control_rate=50.0, task="lift_red_block", seed=3)
        params = [Parameter(k, value=v) for k, v in (overrides or {}).items()]
        self.driver = KinovaDriverNode(backend=self.backend, context=context, parameter_overrides=params)
        self.client = Node("driver_test_client", context=context)
        self.command_pub = self.client.create_publisher(
            EndEffectorCommand, "ee_command", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.estop_pub = self.client.create_publisher(
            Bool, "estop", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                      durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.status: DriverStatus | None = None
        self.pose: PoseStamped | None = None
        self.joints: JointState | None = None
        self.client.create_subscription(DriverStatus, "driver_status", lambda m: setattr(self, "status", m), 10)
        self.client.create_subscription(PoseStamped, "ee_pose", lambda m: setattr(self, "pose", m), 10)
        self.client.create_subscription(JointState, "joint_states", lambda m: setattr(self, "joints", m), 10)
        self.services = {name: self.client.create_client(Trigger, f"driver/{name}")
                         for name in ("estop", "reset_estop", "clear_faults")}
        # Single-threaded: rclpy's MultiThreadedExecutor busy-waits on blocked callback groups and starved the
        # backend's physics thread (measured: physics at ~15% of real time), making motion tests flaky.
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.driver)
        self.executor.add_node(self.client)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.wait_for(lambda: self.status is not None and self.pose is not None
                      and self.command_pub.get_subscription_count() > 0, 15.0, "driver graph to connect")
        time.sleep(0.3)  # let the twin settle after its reset

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5.0)
        self.driver.destroy_node()
        self.client.destroy_node()

    @staticmethod
    def wait_for(predicate, timeout: float, what: str) -> None:
        if not wait_until(predicate, timeout, interval=0.01):
            raise AssertionError(f"timed out waiting for {what}")

    def ee_position(self) -> np.ndarray:
        """Ground truth from the twin itself, not from the driver's topic."""
        with self.backend.cell.lock:
            return np.asarray(self.backend.cell.ee_pose()[0], float).copy()

    def send(self, dp=(0.0, 0.0, 0.0), dr=(0.0, 0.0, 0.0), gripper=0.0, period=0.1, frame_id="base_link") -> None:
        msg = EndEffectorCommand()
        msg.header.stamp = self.client.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        msg.delta_position.x, msg.delta_position.y, msg.delta_position.z = (float(v) for v in dp)
        msg.delta_rotation.x, msg.delta_rotation.y, msg.delta_rotation.z = (float(v) for v in dr)
        msg.gripper = float(gripper)
        seconds = int(math.floor(period)) if math.isfinite(period) and period >= 0 else 0
        msg.period = Duration(sec=seconds, nanosec=int((period - seconds) * 1e9) if math.isfinite(period)
                              and period >= 0 else 0)
        self.command_pub.publish(msg)

    def call(self, name: str) -> Trigger.Response:
        client = self.services[name]
        assert client.wait_for_service(timeout_sec=5.0), f"driver/{name} not available"
        future = client.call_async(Trigger.Request())
        self.wait_for(future.done, 5.0, f"driver/{name} response")
        return future.result()

    def wait_state(self, state: int, timeout: float = 2.0) -> float:
        start = time.monotonic()
        self.wait_for(lambda: self.status is not None and self.status.state == state, timeout,
                      f"driver state {state}")
        return time.monotonic() - start

    def settle(self, seconds: float = 0.4) -> np.ndarray:
        time.sleep(seconds)
        return self.ee_position()


@pytest.fixture
def harness(ros_context):
    h = DriverHarness(ros_context)
    yield h
    h.close()


def test_commanded_delta_moves_twin_by_that_delta(harness):
    start = harness.settle(0.1)
    delta = np.array([0.006, -0.005, 0.004])  # 0.088 m/s over 0.1 s: under the 0.1 m/s clamp
    harness.send(dp=delta, period=0.1)
    harness.wait_state(DriverStatus.STATE_MOVING, 1.0)
    moved = harness.settle(0.5) - start
    assert np.linalg.norm(moved - delta) < 0.25 * np.linalg.norm(delta) + 0.001, moved

    # A stream of deltas at 10 Hz accumulates.
    start = harness.ee_position()
    for _ in range(5):
        harness.send(dp=(0.0, 0.008, 0.0), period=0.1)
        time.sleep(0.1)
    moved = harness.settle(0.4) - start
    np.testing.assert_allclose(moved, [0.0, 0.04, 0.0], atol=0.01)
    assert harness.status.rejected_commands == 0


def test_tool_frame_delta_is_applied_in_the_tool_frame(harness):
    with harness.backend.cell.lock:
        rotation = quaternion_to_matrix(harness.backend.cell.ee_pose()[1])
    start = harness.ee_position()
    tool_delta = np.array([0.0, 0.01, 0.0])
    harness.send(dp=tool_delta, frame_id="tool_frame")
    moved = harness.settle(0.5) - start
    expected = rotation @ tool_delta
    assert np.linalg.norm(moved - expected) < 0.003, (moved, expected)


def test_command_loss_stops_the_arm_within_the_watchdog_timeout(harness):
    # One command asking for 1 s of motion, then silence: the watchdog (0.2 s) must stop it early.
    start = harness.ee_position()
    t0 = time.monotonic()
    harness.send(dp=(0.05, 0.0, 0.0), period=1.0)  # 0.05 m/s
    harness.wait_state(DriverStatus.STATE_WATCHDOG, 2.0)
    tripped_after = time.monotonic() - t0
    assert tripped_after < 0.6  # loose: 0.2 s timeout plus scheduling on a loaded machine
    stopped_at = harness.settle(0.3)
    later = harness.settle(0.5)
    assert np.linalg.norm(later - stopped_at) < STILL_TOLERANCE
    travelled = stopped_at[0] - start[0]
    assert 0.003 < travelled < 0.02, travelled  # ~0.2 s x 0.05 m/s, far from the 0.05 m asked for
    assert harness.status.command_age > 0.2
    # A fresh command clears the watchdog.
    harness.send(dp=(0.0, 0.0, 0.005))
    harness.wait_state(DriverStatus.STATE_MOVING, 1.0)


def test_estop_latches_until_reset(harness):
    harness.estop_pub.publish(Bool(data=True))
    harness.wait_state(DriverStatus.STATE_ESTOP)
    assert harness.status.estop_latched
    start = harness.ee_position()
    for _ in range(5):
        harness.send(dp=(0.01, 0.0, 0.0))
        time.sleep(0.1)
    assert np.linalg.norm(harness.settle(0.3) - start) < STILL_TOLERANCE
    assert harness.status.state == DriverStatus.STATE_ESTOP
    assert harness.status.rejected_commands >= 1 and "e-stop" in harness.status.last_rejection

    harness.estop_pub.publish(Bool(data=False))  # does not unlatch
    time.sleep(0.3)
    assert harness.status.estop_latched

    response = harness.call("reset_estop")
    assert response.success and "reset" in response.message
    harness.wait_state(DriverStatus.STATE_READY)
    start = harness.ee_position()
    harness.send(dp=(0.01, 0.0, 0.0))
    assert harness.settle(0.5)[0] - start[0] > 0.006

    # The service latches too, and stops a moving arm at once.
    harness.send(dp=(0.0, 0.01, 0.0), period=0.2)
    assert harness.call("estop").success
    harness.wait_state(DriverStatus.STATE_ESTOP)
    stopped = harness.settle(0.3)
    assert np.linalg.norm(harness.settle(0.4) - stopped) < STILL_TOLERANCE


@pytest.mark.parametrize("bad, reason", [
    (dict(dp=(math.nan, 0.0, 0.0)), "non-finite"),
    (dict(dr=(0.0, math.inf, 0.0)), "non-finite"),
    (dict(dp=(0.5, 0.0, 0.0)), "linear speed"),        # 5 m/s: refused outright
    (dict(gripper=7.0), "gripper"),
    (dict(period=0.0), "period"),
    (dict(frame_id="camera_link"), "frame_id"),
])
def test_bad_command_is_refused_and_the_arm_holds(harness, bad, reason):
    # Moving slowly in +y under a long command, then a bad command: the arm must hold at once.
    harness.send(dp=(0.0, 0.01, 0.0), period=0.2)  # 0.05 m/s for 0.2 s
    harness.wait_state(DriverStatus.STATE_MOVING, 1.0)
    harness.send(**bad)
    harness.wait_for(lambda: harness.status.rejected_commands == 1, 2.0, "the rejection to be reported")
    assert reason in harness.status.last_rejection
    held = harness.settle(0.3)
    assert np.linalg.norm(harness.settle(0.4) - held) < STILL_TOLERANCE
    assert harness.status.state in (DriverStatus.STATE_READY, DriverStatus.STATE_WATCHDOG)


def test_feedback_topics_and_gripper(harness):
    joints = harness.joints
    assert list(joints.name) == [f"joint_{i}" for i in range(1, 8)] + ["robotiq_85_left_knuckle_joint"]
    assert len(joints.position) == 8 and all(math.isfinite(q) for q in joints.position)
    assert harness.pose.header.frame_id == "base_link"
    reported = np.array([harness.pose.pose.position.x, harness.pose.pose.position.y, harness.pose.pose.position.z])
    assert np.linalg.norm(reported - harness.ee_position()) < 0.002
    assert harness.status.backend == "sim" and harness.status.command_age == pytest.approx(-1.0)

    for _ in range(3):  # closure 0.9 closes the gripper (hysteresis: sent once)
        harness.send(gripper=0.9)
        time.sleep(0.1)
    harness.wait_for(lambda: harness.status.gripper_closed, 2.0, "gripper_closed")
    harness.wait_for(lambda: harness.joints.position[7] > 0.4, 3.0, "the knuckle joint to close")
    # Hold commands (the policy node's) leave the gripper closed and are not counted as rejections.
    rejected = harness.status.rejected_commands
    for _ in range(5):
        harness.send(gripper=EndEffectorCommand.GRIPPER_UNCHANGED)
        time.sleep(0.1)
    time.sleep(0.3)
    assert harness.status.gripper_closed and harness.joints.position[7] > 0.4
    assert harness.status.rejected_commands == rejected
    assert harness.call("clear_faults").success


def test_workspace_box_stops_motion_at_the_boundary(ros_context):
    probe = SimBackend(task="lift_red_block", seed=3)
    probe.connect()
    z0 = probe.read_state().ee_position[2]
    probe.close()
    ceiling = float(z0 + 0.01)
    h = DriverHarness(ros_context, {"workspace_max": [0.8, 0.5, ceiling]})
    try:
        for _ in range(8):  # asks for +0.08 m in z
            h.send(dp=(0.0, 0.0, 0.01))
            time.sleep(0.1)
        z = h.settle(0.4)[2]
        assert z < ceiling + 0.004, (z, ceiling)
        assert z > ceiling - 0.01  # it did move up to the boundary
        assert h.status.rejected_commands == 0  # clipped by the box, not refused
    finally:
        h.close()
