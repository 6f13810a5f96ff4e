"""`kinova_sim_cell` (twin bridge + sim-backend driver sharing one cell) started as a process with the
bringup YAMLs, observed over real DDS: it publishes camera images and status, and a commanded delta moves
the reported end-effector pose by that delta."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

from builtin_interfaces.msg import Duration  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from robovlms_msgs.msg import DriverStatus, EndEffectorCommand, EpisodeInfo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "ros2_ws" / "src" / "robovlms_bringup" / "config"
PATHS = [REPO / "ros2_ws" / "src" / "robovlms_drivers", REPO / "sim_bridges" / "robovlms_twin"]


@pytest.fixture
def sim_cell_process():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, PATHS), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "robovlms_twin.sim_cell", "--ros-args",
         "--params-file", str(CONFIG / "twin.yaml"), "--params-file", str(CONFIG / "kinova_driver.yaml")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_sim_cell_process_moves_and_publishes(ros_context, sim_cell_process):
    node = Node("sim_cell_probe", context=ros_context)
    got: dict[str, object] = {}
    node.create_subscription(DriverStatus, "driver_status", lambda m: got.__setitem__("status", m), 10)
    node.create_subscription(PoseStamped, "ee_pose", lambda m: got.__setitem__("pose", m), 10)
    node.create_subscription(EpisodeInfo, "episode_info", lambda m: got.__setitem__("episode", m), 10)
    node.create_subscription(Image, "/rgb/image_raw", lambda m: got.__setitem__("kinect", m),
                             qos_profile_sensor_data)
    node.create_subscription(Image, "/camera/camera/color/image_raw", lambda m: got.__setitem__("wrist", m),
                             qos_profile_sensor_data)
    command_pub = node.create_publisher(EndEffectorCommand, "ee_command",
                                        QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    def spin_for(seconds: float, until=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            executor.spin_once(timeout_sec=0.02)

    try:
        spin_for(60.0, lambda: {"status", "pose", "episode", "kinect", "wrist"} <= got.keys()
                 and command_pub.get_subscription_count() > 0)
        assert sim_cell_process.poll() is None, sim_cell_process.stdout.read()
        assert {"status", "pose", "episode", "kinect", "wrist"} <= got.keys(), sorted(got)
        assert got["kinect"].encoding == "bgra8" and got["kinect"].header.frame_id == "rgb_camera_link"
        assert got["wrist"].encoding == "rgb8"
        assert got["status"].backend == "sim" and got["status"].state == DriverStatus.STATE_READY

        def position() -> np.ndarray:
            p = got["pose"].pose.position
            return np.array([p.x, p.y, p.z])

        spin_for(0.5)
        start = position()
        delta = np.array([0.0, 0.007, -0.005])  # 0.086 m/s over 0.1 s
        command = EndEffectorCommand(period=Duration(sec=0, nanosec=100_000_000))
        command.header.frame_id = "base_link"
        command.delta_position.y, command.delta_position.z = float(delta[1]), float(delta[2])
        command_pub.publish(command)
        spin_for(1.0)
        moved = position() - start
        assert np.linalg.norm(moved - delta) < 0.3 * np.linalg.norm(delta) + 0.001, moved
        assert got["status"].state == DriverStatus.STATE_WATCHDOG  # one command, then silence
    finally:
        executor.shutdown()
        node.destroy_node()
