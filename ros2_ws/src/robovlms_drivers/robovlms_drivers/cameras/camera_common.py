"""Shared parts of the camera nodes: the FrameSource interface each SDK wrapper implements and a node that
publishes Image + CameraInfo from a capture thread (messages built by robovlms_io.images)."""
from __future__ import annotations

import abc
import threading
from typing import Callable

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from robovlms_io import qos
from robovlms_io.images import ImageConversionError, Intrinsics, camera_info_msg, pack_image
from robovlms_io.params import declare_params
from robovlms_io.spin import run_nodes

CONSECUTIVE_TIMEOUTS_BEFORE_EXIT = 10


class CameraUnavailable(RuntimeError):
    """No device, a missing SDK or library, or an unsupported setting; the message says what to do."""


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


class CameraNode(Node):
    """Opens a FrameSource and publishes every frame with its CameraInfo (sensor-data QoS) from a
    capture thread, so a slow device never blocks the executor."""

    def __init__(self, node_name: str, config_cls: type, source_factory: Callable[[object], FrameSource],
                 encoding: str, **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.config = declare_params(self, config_cls)
        self.encoding = encoding
        self.source = source_factory(self.config)
        self.intrinsics = self.source.open()  # raises CameraUnavailable before anything is advertised
        self._image_pub = self.create_publisher(Image, self.config.image_topic, qos.SENSOR_PUBLICATION)
        self._info_pub = self.create_publisher(CameraInfo, self.config.camera_info_topic, qos.SENSOR_PUBLICATION)
        self.failed: str | None = None
        self.exit_code: int | None = None  # set when capture fails: ends the process (robovlms_io.spin)
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
                self._image_pub.publish(pack_image(frame, self.encoding, self.config.frame_id, stamp))
            except ImageConversionError as err:
                self.get_logger().error(f"dropping frame: {err}", throttle_duration_sec=2.0)
                continue
            self._info_pub.publish(camera_info_msg(self.intrinsics, self.config.frame_id, stamp))

    def _fail(self, message: str) -> None:
        self.failed = message
        self.exit_code = 1
        self.get_logger().error(message)

    def destroy_node(self) -> None:
        self._running.clear()
        self._thread.join(timeout=2.0)
        self.source.close()
        super().destroy_node()


def run_camera_node(executable: str, node_factory: Callable[[], CameraNode], args: list[str] | None) -> int:
    """Entry-point body: spin until shutdown or capture failure (exit 1); a missing device or SDK, or a bad
    parameter, is one clear line and exit 1."""
    return run_nodes(executable, node_factory, args)
