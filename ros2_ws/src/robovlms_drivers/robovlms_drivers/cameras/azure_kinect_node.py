"""`azure_kinect_camera`: colour stream of an Azure Kinect (static camera) via pykinect_azure, published like
azure_kinect_ros_driver does by default (/rgb/image_raw, bgra8, rgb_camera_link)."""
from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass

import numpy as np

from robovlms_drivers.cameras.camera_common import (
    CameraNode,
    CameraUnavailable,
    FrameSource,
    run_camera_node,
)
from robovlms_io.images import Intrinsics
from robovlms_io.names import STATIC_CAMERA
from robovlms_io.params import param

ENCODING = STATIC_CAMERA.encoding
DEFAULT_LIBK4A = "/usr/lib/x86_64-linux-gnu/libk4a.so"
# Azure Kinect colour modes: parameter value -> (k4a enum name, width, height)
COLOR_RESOLUTIONS = {
    "720P": ("K4A_COLOR_RESOLUTION_720P", 1280, 720),
    "1080P": ("K4A_COLOR_RESOLUTION_1080P", 1920, 1080),
    "1440P": ("K4A_COLOR_RESOLUTION_1440P", 2560, 1440),
    "1536P": ("K4A_COLOR_RESOLUTION_1536P", 2048, 1536),
    "2160P": ("K4A_COLOR_RESOLUTION_2160P", 3840, 2160),
    "3072P": ("K4A_COLOR_RESOLUTION_3072P", 4096, 3072),
}
FPS_MODES = {5: "K4A_FRAMES_PER_SECOND_5", 15: "K4A_FRAMES_PER_SECOND_15", 30: "K4A_FRAMES_PER_SECOND_30"}


@dataclass(frozen=True)
class AzureKinectParams:
    """Parameters of `azure_kinect_camera`."""

    serial_number: str = param("", "Serial number of the device to open; empty = the first one found.")
    color_resolution: str = param("720P", f"Colour mode, one of {', '.join(COLOR_RESOLUTIONS)}.")
    fps: int = param(30, "Frame rate: 5, 15 or 30 (3072P supports at most 15).")
    k4a_library_path: str = param("", f"Path of libk4a.so; empty = {DEFAULT_LIBK4A}.")
    frame_id: str = param(STATIC_CAMERA.frame_id, "frame_id of Image and CameraInfo.")
    image_topic: str = param(STATIC_CAMERA.image_topic, "sensor_msgs/Image output topic.")
    camera_info_topic: str = param(STATIC_CAMERA.info_topic, "sensor_msgs/CameraInfo output topic.")


def check_mode(config: AzureKinectParams) -> None:
    """Refuse colour modes the sensor does not have before touching the SDK."""
    if config.color_resolution not in COLOR_RESOLUTIONS:
        raise CameraUnavailable(f"color_resolution {config.color_resolution!r} unknown; use one of "
                                f"{', '.join(COLOR_RESOLUTIONS)}")
    if config.fps not in FPS_MODES:
        raise CameraUnavailable(f"fps {config.fps} unsupported; use 5, 15 or 30")
    if config.color_resolution == "3072P" and config.fps == 30:
        raise CameraUnavailable("3072P runs at 15 fps at most")


def load_pykinect(library_path: str):
    """Import pykinect_azure and load libk4a ourselves first: pykinect_azure calls sys.exit on a missing
    library, which would hide the reason from the user."""
    try:
        import pykinect_azure
    except ImportError as err:
        raise CameraUnavailable(f"pykinect_azure cannot be imported ({err}); install it with "
                                "`pip install pykinect_azure==0.0.4`") from err
    path = library_path or DEFAULT_LIBK4A
    try:
        ctypes.CDLL(path)
    except OSError as err:
        raise CameraUnavailable(
            f"Azure Kinect Sensor SDK library not loadable: {err}. Install the SDK (Debian/Ubuntu package "
            "libk4a1.4 from Microsoft's repository) or set k4a_library_path to libk4a.so") from err
    pykinect_azure.initialize_libraries(module_k4a_path=path)
    return pykinect_azure


class AzureKinectSource(FrameSource):
    def __init__(self, config: AzureKinectParams) -> None:
        self.config = config
        self._device = None

    def open(self) -> Intrinsics:
        check_mode(self.config)
        k4a = load_pykinect(self.config.k4a_library_path)
        count = k4a.Device.device_get_installed_count()
        if count == 0:
            raise CameraUnavailable("no Azure Kinect connected (check USB 3 and power, then `k4aviewer`)")
        index = self._find_device_index(k4a, count)
        enum_name, _, _ = COLOR_RESOLUTIONS[self.config.color_resolution]
        device_config = k4a.default_configuration
        device_config.color_format = k4a.K4A_IMAGE_FORMAT_COLOR_BGRA32
        device_config.color_resolution = getattr(k4a, enum_name)
        device_config.camera_fps = getattr(k4a, FPS_MODES[self.config.fps])
        device_config.depth_mode = k4a.K4A_DEPTH_MODE_OFF
        self._device = k4a.start_device(device_index=index, config=device_config)
        params = self._device.calibration.color_params
        _, width, height = COLOR_RESOLUTIONS[self.config.color_resolution]
        # Brown-Conrady with 6 radial terms, in ROS's rational_polynomial order (as the official driver).
        distortion = [params.k1, params.k2, params.p1, params.p2, params.k3, params.k4, params.k5, params.k6]
        return Intrinsics(width, height, params.fx, params.fy, params.cx, params.cy, "rational_polynomial",
                          distortion)

    def _find_device_index(self, k4a, count: int) -> int:
        if not self.config.serial_number:
            return 0
        found = []
        for index in range(count):
            device = k4a.Device(index)
            found.append(device.get_serialnum())
            device.close()
            if found[-1] == self.config.serial_number:
                return index
        raise CameraUnavailable(f"Azure Kinect {self.config.serial_number!r} not found; connected: {', '.join(found)}")

    def read(self, timeout_s: float) -> np.ndarray | None:
        capture = self._device.update(timeout_in_ms=int(timeout_s * 1000))
        ok, bgra = capture.get_color_image()
        return np.ascontiguousarray(bgra) if ok else None

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None


class AzureKinectCameraNode(CameraNode):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("azure_kinect_camera", AzureKinectParams, AzureKinectSource, ENCODING, **node_kwargs)


def main(args: list[str] | None = None) -> int:
    return run_camera_node("azure_kinect_camera", AzureKinectCameraNode, args)


if __name__ == "__main__":
    sys.exit(main())
