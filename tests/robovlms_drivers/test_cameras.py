"""Camera nodes: clean failure without a device or SDK library (real executables, real SDKs), message
building, and the publishing path over DDS fed by a synthetic frame source."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from robovlms_drivers.cameras.camera_common import CameraNode, FrameSource  # noqa: E402
from robovlms_drivers.cameras.realsense_node import RealSenseParams  # noqa: E402
from robovlms_io.images import Intrinsics, camera_info_msg, pack_image  # noqa: E402
from polling import wait_until  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DRIVERS_SRC = REPO / "ros2_ws" / "src" / "robovlms_drivers"


def run_executable(module: str, *ros_args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(DRIVERS_SRC), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", module]
    if ros_args:
        command += ["--ros-args", *ros_args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def assert_clean_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def _pyrealsense_loads() -> bool:
    try:
        import pyrealsense2  # noqa: F401
    except ImportError:
        return False
    return True


def test_realsense_without_device_exits_cleanly():
    result = run_executable("robovlms_drivers.cameras.realsense_node")
    if _pyrealsense_loads():
        assert_clean_failure(result, "realsense_camera:", "no RealSense device connected")
    else:
        assert_clean_failure(result, "realsense_camera:", "pyrealsense2 cannot be loaded", "pip install")


def test_azure_kinect_without_libk4a_exits_cleanly():
    result = run_executable("robovlms_drivers.cameras.azure_kinect_node")
    try:
        import pykinect_azure  # noqa: F401
    except ImportError:
        assert_clean_failure(result, "azure_kinect_camera:", "pip install pykinect_azure")
        return
    assert_clean_failure(result, "azure_kinect_camera:", "Azure Kinect Sensor SDK library not loadable", "libk4a")
    result = run_executable("robovlms_drivers.cameras.azure_kinect_node",
                            "-p", "k4a_library_path:=/nonexistent/libk4a.so")
    assert_clean_failure(result, "/nonexistent/libk4a.so")


@pytest.mark.parametrize("module, args, fragment", [
    ("robovlms_drivers.cameras.azure_kinect_node", ["-p", "color_resolution:=4K"], "color_resolution '4K'"),
    ("robovlms_drivers.cameras.azure_kinect_node", ["-p", "fps:=20"], "fps 20 unsupported"),
    ("robovlms_drivers.cameras.realsense_node", ["-p", "width:=wide"], "parameter 'width'"),
])
def test_bad_parameters_exit_cleanly(module, args, fragment):
    assert_clean_failure(run_executable(module, *args), fragment)


def test_image_message_matches_encoding():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = pack_image(rgb, "rgb8", "cam", _stamp())
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.header.frame_id) == (2, 3, 9, "rgb8", "cam")
    assert bytes(msg.data) == rgb.tobytes()
    bgra = np.zeros((4, 5, 4), np.uint8)
    assert pack_image(bgra, "bgra8", "k", _stamp()).step == 20
    with pytest.raises(ValueError, match="bgra8 needs"):
        pack_image(rgb, "bgra8", "k", _stamp())
    with pytest.raises(ValueError, match="uint8"):
        pack_image(rgb.astype(np.float32), "rgb8", "k", _stamp())
    with pytest.raises(ValueError, match="unsupported encoding"):
        pack_image(rgb, "yuv422", "k", _stamp())


def test_camera_info_from_intrinsics():
    info = camera_info_msg(Intrinsics(640, 480, 600.0, 601.0, 320.5, 240.5, "plumb_bob", [0.1, 0, 0, 0, 0]),
                           "camera_color_optical_frame", _stamp())
    assert (info.width, info.height, info.distortion_model) == (640, 480, "plumb_bob")
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), [[600, 0, 320.5], [0, 601, 240.5], [0, 0, 1]])
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], np.reshape(info.k, (3, 3)))
    assert list(info.d) == pytest.approx([0.1, 0, 0, 0, 0])


def _stamp():
    from builtin_interfaces.msg import Time

    return Time(sec=1, nanosec=2)


class SyntheticFrameSource(FrameSource):
    """Test double of a camera SDK: yields numbered frames, one malformed frame, then times out."""

    def __init__(self, config) -> None:
        self.config = config
        self.count = 0
        self.closed = False

    def open(self) -> Intrinsics:
        return Intrinsics(self.config.width, self.config.height, 100.0, 100.0, 16.0, 12.0)

    def read(self, timeout_s: float):
        self.count += 1
        time.sleep(0.02)
        if self.count == 3:
            return np.zeros((5, 5), np.uint8)  # wrong shape: must be dropped, not crash the node
        if self.count > 40:
            return None
        return np.full((self.config.height, self.config.width, 3), self.count, np.uint8)

    def close(self) -> None:
        self.closed = True


def test_camera_node_publishes_image_and_info_on_official_topics(ros_context):
    from rclpy.parameter import Parameter

    node = CameraNode("realsense_camera", RealSenseParams, SyntheticFrameSource, "rgb8", context=ros_context,
                      parameter_overrides=[Parameter("width", value=32), Parameter("height", value=24),
                                           Parameter("fps", value=50)])
    listener = Node("camera_listener", context=ros_context)
    images, infos = [], []
    listener.create_subscription(Image, "/camera/camera/color/image_raw", images.append, qos_profile_sensor_data)
    listener.create_subscription(CameraInfo, "/camera/camera/color/camera_info", infos.append,
                                 qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_until(lambda: node.failed is not None, 15.0, interval=0.05)
        assert node.failed is not None and "consecutive reads" in node.failed  # timeouts end streaming
        assert images and infos
        first = images[0]
        assert (first.encoding, first.header.frame_id, first.width, first.height) == (
            "rgb8", "camera_color_optical_frame", 32, 24)
        assert all(len(m.data) == 32 * 24 * 3 for m in images)  # the malformed frame was dropped
        assert infos[0].header.frame_id == "camera_color_optical_frame" and infos[0].k[0] == 100.0
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        listener.destroy_node()
    assert node.source.closed
