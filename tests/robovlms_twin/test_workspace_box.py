"""The driver's workspace box holds at the clamp speed on every face the twin can reach, over DDS, with the sim
cell started as `kinova_sim_cell` is launched (twin.yaml + kinova_driver.yaml: 50 Hz physics, 0.3 m/s clamp);
and driver_status reports READY, not MOVING, while the arm holds. (The twin cannot reach z_min: the fingertips
touch the table at 13 mm; nor x_max = 0.80 m: out of reach.)"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

from robovlms_io import qos  # noqa: E402
from robovlms_io.commands import GRIPPER_UNCHANGED, end_effector_command, period_duration  # noqa: E402
from robovlms_msgs.msg import DriverStatus, EndEffectorCommand  # noqa: E402
from test_sim_cell import sim_cell_process  # noqa: E402,F401  (the process fixture)

START = np.array([0.45, 0.0, 0.35])
CLAMP_STEP = 0.03  # m per 0.1 s command: the twin driver's 0.3 m/s clamp
FACES = [("x_min", 0, -1, 0.15), ("y_min", 1, -1, -0.50), ("y_max", 1, 1, 0.50), ("z_max", 2, 1, 0.60)]


class Probe:
    def __init__(self, context) -> None:
        self.node = Node("workspace_probe", context=context)
        self.pose: np.ndarray | None = None
        self.status: DriverStatus | None = None
        self.node.create_subscription(PoseStamped, "ee_pose", self._on_pose, qos.RELIABLE)
        self.node.create_subscription(DriverStatus, "driver_status", self._on_status, qos.RELIABLE)
        self.publisher = self.node.create_publisher(EndEffectorCommand, "ee_command", qos.COMMAND)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.trace: list[np.ndarray] = []

    def _on_pose(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self.pose = np.array([p.x, p.y, p.z])
        self.trace.append(self.pose)

    def _on_status(self, msg: DriverStatus) -> None:
        self.status = msg

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def command(self, delta: np.ndarray, seconds: float) -> None:
        """Publish the same delta at 10 Hz for ``seconds``."""
        for _ in range(int(round(seconds / 0.1))):
            self.publisher.publish(end_effector_command([*delta, 0, 0, 0], GRIPPER_UNCHANGED, "base_link",
                                                        self.node.get_clock().now().to_msg(), period_duration(0.1)))
            self.spin(0.1)

    def approach(self, delta: np.ndarray, axis: int, sign: int, timeout: float = 15.0) -> None:
        """Publish ``delta`` at 10 Hz until the arm has not advanced 0.5 mm along it for a second (it stands at
        the face) or ``timeout`` s pass (a slow, loaded machine runs the twin slower than real time)."""
        best, since = -np.inf, time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - since < 1.0:
            self.command(delta, 0.1)
            progress = sign * self.pose[axis]
            if progress > best + 0.0005:
                best, since = progress, time.monotonic()

    def go_to(self, target: np.ndarray) -> None:
        for _ in range(80):
            error = target - self.pose
            if np.linalg.norm(error) < 0.005:
                return
            self.command(np.clip(error, -CLAMP_STEP, CLAMP_STEP), 0.1)
        raise AssertionError(f"could not reach {target}, at {self.pose}")


def test_box_holds_at_the_clamp_speed_and_status_follows_motion(ros_context, sim_cell_process):
    probe = Probe(ros_context)
    deadline = time.monotonic() + 60
    while (probe.pose is None or probe.publisher.get_subscription_count() == 0) and time.monotonic() < deadline:
        probe.spin(0.1)
    assert probe.pose is not None, sim_cell_process.stdout.read() if sim_cell_process.poll() is not None else ""
    overshoot = {}
    for name, axis, sign, face in FACES:
        probe.go_to(START)
        probe.trace.clear()
        delta = np.zeros(3)
        delta[axis] = sign * CLAMP_STEP
        probe.approach(delta, axis, sign)  # stream the clamp-speed delta until the arm stops at the face
        probe.command(np.zeros(3), 1.0)  # then hold: the arm must come to rest inside
        reached = max(sign * (p[axis] - face) for p in probe.trace)
        overshoot[name] = reached
        assert reached > -0.01, f"{name}: never came within 1 cm of the face ({reached * 1e3:.1f} mm)"
    assert all(v <= 0.001 for v in overshoot.values()), {k: f"{v * 1e3:.2f} mm" for k, v in overshoot.items()}

    probe.command(np.zeros(3), 0.6)  # hold commands: the arm is still
    assert probe.status.state == DriverStatus.STATE_READY, probe.status
    probe.command(np.array([0.0, 0.0, -0.01]), 0.3)
    assert probe.status.state == DriverStatus.STATE_MOVING, probe.status
    probe.node.destroy_node()
