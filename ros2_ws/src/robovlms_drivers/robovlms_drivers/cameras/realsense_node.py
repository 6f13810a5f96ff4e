"""`realsense_camera`: colour stream of an Intel RealSense (wrist camera) via pyrealsense2, published like
realsense2_camera does by default (/camera/camera/color/image_raw, rgb8, camera_color_optical_frame)."""
from __future__ import annotations

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
from robovlms_io.names import WRIST_CAMERA
from robovlms_io.params import param

ENCODING = WRIST_CAMERA.encoding


@dataclass(frozen=True)
class RealSenseParams:
    """Parameters of `realsense_camera`."""

    serial_number: str = param("", "Serial number of the device to open; empty = the first one found.")
    width: int = param(640, "Colour stream width in pixels.", positive=True)
    height: int = param(480, "Colour stream height in pixels.", positive=True)
    fps: int = param(30, "Colour stream frame rate.", positive=True)
    frame_id: str = param(WRIST_CAMERA.frame_id, "frame_id of Image and CameraInfo.")
    image_topic: str = param(WRIST_CAMERA.image_topic, "sensor_msgs/Image output topic.")
    camera_info_topic: str = param(WRIST_CAMERA.info_topic, "sensor_msgs/CameraInfo output topic.")


def _import_pyrealsense2():
    try:
        import pyrealsense2
    except ImportError as err:  # the wheel missing, or its native deps (libusb-1.0) missing
        raise CameraUnavailable(
            f"pyrealsense2 cannot be loaded ({err}); install it with `pip install pyrealsense2==2.59.1.11053` "
            "and the system library with `apt-get install libusb-1.0-0`") from err
    return pyrealsense2


def distortion_model_name(rs, model) -> str:
    """librealsense distortion enum -> ROS CameraInfo model name (as the official wrapper reports it)."""
    if model == rs.distortion.kannala_brandt4:
        return "equidistant"
    return "plumb_bob"


class RealSenseSource(FrameSource):
    def __init__(self, config: RealSenseParams) -> None:
        self.config = config
        self._rs = None
        self._pipeline = None

    def open(self) -> Intrinsics:
        rs = self._rs = _import_pyrealsense2()
        cfg = self.config
        serials = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
        if not serials:
            raise CameraUnavailable("no RealSense device connected (check the USB 3 cable and `rs-enumerate-devices`)")
        if cfg.serial_number and cfg.serial_number not in serials:
            raise CameraUnavailable(f"RealSense {cfg.serial_number!r} not found; connected: {', '.join(serials)}")
        rs_config = rs.config()
        if cfg.serial_number:
            rs_config.enable_device(cfg.serial_number)
        rs_config.enable_stream(rs.stream.color, cfg.width, cfg.height, rs.format.rgb8, cfg.fps)
        self._pipeline = rs.pipeline()
        try:
            profile = self._pipeline.start(rs_config)
        except RuntimeError as err:
            self._pipeline = None
            raise CameraUnavailable(f"cannot start RealSense colour {cfg.width}x{cfg.height}@{cfg.fps}: {err}") from err
        intr = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        return Intrinsics(intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy,
                          distortion_model_name(rs, intr.model), list(intr.coeffs))

    def read(self, timeout_s: float) -> np.ndarray | None:
        ok, frames = self._pipeline.try_wait_for_frames(int(timeout_s * 1000))
        if not ok:
            return None
        color = frames.get_color_frame()
        return np.asanyarray(color.get_data()).copy() if color else None

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None


class RealSenseCameraNode(CameraNode):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("realsense_camera", RealSenseParams, RealSenseSource, ENCODING, **node_kwargs)


def main(args: list[str] | None = None) -> int:
    return run_camera_node("realsense_camera", RealSenseCameraNode, args)


if __name__ == "__main__":
    sys.exit(main())
