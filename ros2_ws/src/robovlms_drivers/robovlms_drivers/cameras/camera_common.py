"""Shared parts of the camera nodes: the FrameSource interface each SDK wrapper implements, message
builders, and a node that publishes Image + CameraInfo from a capture thread."""
from __future__ import annotations

import abc
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from robovlms_drivers.params import declare_config

ENCODING_CHANNELS = {"rgb8": 3, "bgr8": 3, "bgra8": 4, "rgba8": 4}
CONSECUTIVE_TIMEOUTS_BEFORE_EXIT = 10


class CameraUnavailable(RuntimeError):
    """No device, a missing SDK or library, or an unsupported setting; the message says what to do."""


@dataclass
class Intrinsics:
    """Pinhole intrinsics of the colour stream as reported by the device."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: list[float] = field(default_factory=lambda: [0.0] * 5)


class FrameSource(abc.ABC):
    """One colour stream of one device."""

    @abc.abstractmethod
    def open(self) -> Intrinsics:
        """Find and start the device; raise CameraUnavailable with an actionable message."""

    @abc.abstractmethod
    def read(self, timeout_s: float) -> np.ndarray | None:
        """Next colour frame (H, W, C) uint8 in the node's encoding, or None on timeout."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop streaming; safe to call twice."""


def array_to_image_msg(array: np.ndarray, encoding: str, frame_id: str, stamp) -> Image:
    """Pack an (H, W, C) uint8 array into sensor_msgs/Image, checking it matches `encoding`."""
    channels = ENCODING_CHANNELS.get(encoding)
    if channels is None:
        raise ValueError(f"unsupported encoding {encoding!r}; known: {sorted(ENCODING_CHANNELS)}")
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"{encoding} needs an (H, W, {channels}) uint8 array, got {array.shape} {array.dtype}")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.shape[1] * channels)
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def camera_info_msg(intrinsics: Intrinsics, frame_id: str, stamp) -> CameraInfo:
    """CameraInfo for an unrectified colour stream: K from the intrinsics, R identity, P = [K | 0]."""
    i = intrinsics
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(i.width), int(i.height)
    msg.distortion_model = i.distortion_model
    msg.d = [float(v) for v in i.distortion]
    msg.k = [float(i.fx), 0.0, float(i.cx), 0.0, float(i.fy), float(i.cy), 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(i.fx), 0.0, float(i.cx), 0.0, 0.0, float(i.fy), float(i.cy), 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class CameraNode(Node):
    """Opens a FrameSource and publishes every frame with its CameraInfo (sensor-data QoS) from a
    capture thread, so a slow device never blocks the executor."""

    def __init__(self, node_name: str, config_cls: type, source_factory: Callable[[object], FrameSource],
                 encoding: str, **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.config = declare_config(self, config_cls)
        self.encoding = encoding
        self.source = source_factory(self.config)
        self.intrinsics = self.source.open()  # raises CameraUnavailable before anything is advertised
        self._image_pub = self.create_publisher(Image, self.config.image_topic, qos_profile_sensor_data)
        self._info_pub = self.create_publisher(CameraInfo, self.config.camera_info_topic, qos_profile_sensor_data)
        self.failed: str | None = None
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._capture_loop, name=f"{node_name}_capture", daemon=True)
        self._thread.start()
        self.get_logger().info(f"streaming {self.intrinsics.width}x{self.intrinsics.height} {encoding} on "
                               f"{self._image_pub.topic_name}")

    def _capture_loop(self) -> None:
        timeouts = 0
        timeout_s = max(0.5, 4.0 / max(self.config.fps, 1))
        while self._running.is_set():
            try:
                frame = self.source.read(timeout_s)
            except Exception as err:  # SDK errors (unplugged device) end streaming with a clear message
                self._fail(f"capture failed: {err}")
                return
            if frame is None:
                timeouts += 1
                self.get_logger().warning("no frame from the camera", throttle_duration_sec=2.0)
                if timeouts >= CONSECUTIVE_TIMEOUTS_BEFORE_EXIT:
                    self._fail(f"no frame for {timeouts} consecutive reads; is the camera still connected?")
                    return
                continue
            timeouts = 0
            stamp = self.get_clock().now().to_msg()
            try:
                self._image_pub.publish(array_to_image_msg(frame, self.encoding, self.config.frame_id, stamp))
            except ValueError as err:
                self.get_logger().error(f"dropping frame: {err}", throttle_duration_sec=2.0)
                continue
            self._info_pub.publish(camera_info_msg(self.intrinsics, self.config.frame_id, stamp))

    def _fail(self, message: str) -> None:
        self.failed = message
        self.get_logger().error(message)

    def destroy_node(self) -> None:
        self._running.clear()
        self._thread.join(timeout=2.0)
        self.source.close()
        super().destroy_node()


def run_camera_node(executable: str, node_factory: Callable[[], CameraNode], args: list[str] | None) -> int:
    """Entry-point body: spin until shutdown or capture failure; print one clear line and exit 1 on
    CameraUnavailable or a bad parameter instead of a traceback."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        while rclpy.ok() and node.failed is None:
            rclpy.spin_once(node, timeout_sec=0.2)
        return 1 if node.failed else 0
    except (CameraUnavailable, ValueError) as err:
        print(f"{executable}: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
