"""sensor_msgs/Image <-> numpy conversion for 8-bit colour and mono images without cv_bridge, and CameraInfo.

Semantics follow cv_bridge's ``imgmsg_to_cv2(msg, "rgb8")``: rows are ``step`` bytes apart (a driver
may pad each row), only the first ``width * channels`` bytes of a row are pixels, and the data holds
exactly ``height * step`` bytes. ``is_bigendian`` does not change 8-bit data but must be 0 or 1.

Speed matters (a 1280x720 bgra8 Azure Kinect frame arrives at 30 Hz): the message buffer is viewed
with numpy, never iterated in Python, and channels are reordered with one strided copy per channel.
"""
from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

# Encoding -> channel order of its bytes (``None`` = single grey channel).
DECODABLE_ENCODINGS: dict[str, tuple[int, ...] | None] = {
    "rgb8": (0, 1, 2),
    "bgr8": (2, 1, 0),
    "rgba8": (0, 1, 2),
    "bgra8": (2, 1, 0),
    "mono8": None,
}
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
ENCODABLE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")


class ImageConversionError(ValueError):
    """A sensor_msgs/Image that cannot be turned into an RGB array (message says why)."""


def _message_bytes(data: Any) -> np.ndarray:
    """A flat uint8 view of the message data (rclpy gives array.array('B'), rosbags a numpy array)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8).ravel()


def check_image_msg(msg: Image) -> np.ndarray:
    """Validate an 8-bit Image message without converting it; return its (height, width, channels) pixel
    view (no copy). Cheap enough for a camera callback at full frame rate.

    Raises:
        ImageConversionError: unsupported encoding, bad is_bigendian, zero size, or a step / data
            length inconsistent with width x height x channels.
    """
    encoding, height, width, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    if encoding not in DECODABLE_ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r} ({width}x{height}); supported: {sorted(DECODABLE_ENCODINGS)}"
        )
    if msg.is_bigendian not in (0, 1):
        raise ImageConversionError(f"{encoding} image has is_bigendian={msg.is_bigendian}, expected 0 or 1")
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"{encoding} image has zero size {width}x{height}")
    channels = CHANNELS[encoding]
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(
            f"{encoding} image {width}x{height}: step {step} is smaller than width*channels = {row_bytes}"
        )
    flat = _message_bytes(msg.data)
    if flat.size != step * height:
        raise ImageConversionError(
            f"{encoding} image {width}x{height}, step {step}: data has {flat.size} bytes, "
            f"expected step*height = {step * height}"
        )
    return flat.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """Convert an 8-bit Image message to an RGB uint8 array of shape (height, width, 3).

    The result is C-contiguous. For unpadded ``rgb8`` it is a zero-copy view of ``msg.data`` (read
    only when the message buffer is); every other case returns a fresh array.

    Raises:
        ImageConversionError: as :func:`check_image_msg`.
    """
    return pixels_to_rgb(check_image_msg(msg), msg.encoding)


def pixels_to_rgb(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """The (height, width, channels) view :func:`check_image_msg` returned -> RGB uint8 (height, width, 3)."""
    height, width, channels = pixels.shape
    order = DECODABLE_ENCODINGS[encoding]
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    if order == (0, 1, 2) and channels == 3:
        return np.ascontiguousarray(pixels)  # a no-op unless rows are padded
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for out_channel, in_channel in enumerate(order):
        rgb[..., out_channel] = pixels[..., in_channel]
    return rgb


def rgb_to_image_msg(rgb: np.ndarray, encoding: str = "rgb8", frame_id: str = "", stamp: Time | None = None) -> Image:
    """Build an unpadded Image message from an RGB uint8 array (height, width, 3).

    ``encoding`` is one of rgb8, bgr8, rgba8, bgra8 (alpha is set to 255, opaque).
    """
    if encoding not in ENCODABLE_ENCODINGS:
        raise ImageConversionError(f"cannot encode {encoding!r}; supported: {list(ENCODABLE_ENCODINGS)}")
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise ImageConversionError(f"expected an RGB uint8 array (H, W, 3), got {type(rgb).__name__} {shape}")
    height, width = rgb.shape[:2]
    channels = CHANNELS[encoding]
    if encoding == "rgb8":
        pixels = rgb
    else:
        pixels = np.empty((height, width, channels), dtype=np.uint8)
        for in_channel, out_channel in enumerate(DECODABLE_ENCODINGS[encoding]):
            pixels[..., out_channel] = rgb[..., in_channel]
        if channels == 4:
            pixels[..., 3] = 255
    return pack_image(pixels, encoding, frame_id, stamp)


def pack_image(pixels: np.ndarray, encoding: str, frame_id: str = "", stamp: Time | None = None) -> Image:
    """An unpadded Image message from pixels already laid out as ``encoding`` (H, W, channels) uint8, such as a
    camera SDK delivers them."""
    channels = CHANNELS.get(encoding)
    if channels is None or encoding not in ENCODABLE_ENCODINGS:
        raise ImageConversionError(f"unsupported encoding {encoding!r}; can pack: {list(ENCODABLE_ENCODINGS)}")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3 \
            or pixels.shape[2] != channels:
        shape = getattr(pixels, "shape", None)
        raise ImageConversionError(f"{encoding} needs an (H, W, {channels}) uint8 array, got "
                                   f"{type(pixels).__name__} {shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f"cannot encode an empty {width}x{height} image")
    # With field checks on, the generated ``data`` setter keeps an array.array('B') as is (no second
    # copy); with them off it would copy it again.
    msg = Image(check_fields=True)
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = 0
    msg.step = width * channels
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    msg.data = data
    return msg


@dataclass
class Intrinsics:
    """Pinhole intrinsics of a colour stream (pixels; principal point in the ROS / OpenCV convention)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: list[float] = field(default_factory=lambda: [0.0] * 5)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, width: int, height: int) -> "Intrinsics":
        """From a distortion-free 3x3 camera matrix."""
        return cls(int(width), int(height), float(matrix[0, 0]), float(matrix[1, 1]), float(matrix[0, 2]),
                   float(matrix[1, 2]))


def camera_info_msg(intrinsics: Intrinsics, frame_id: str = "", stamp: Time | None = None) -> CameraInfo:
    """CameraInfo of an unrectified colour stream: K from the intrinsics, R identity, P = [K | 0]."""
    i = intrinsics
    msg = CameraInfo()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(i.width), int(i.height)
    msg.distortion_model = i.distortion_model
    msg.d = [float(v) for v in i.distortion]
    msg.k = [float(i.fx), 0.0, float(i.cx), 0.0, float(i.fy), float(i.cy), 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(i.fx), 0.0, float(i.cx), 0.0, 0.0, float(i.fy), float(i.cy), 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
