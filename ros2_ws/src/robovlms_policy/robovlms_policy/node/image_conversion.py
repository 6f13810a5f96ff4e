"""sensor_msgs/Image <-> numpy RGB conversion for 8-bit colour and mono images, without cv_bridge.

Semantics follow cv_bridge's ``imgmsg_to_cv2(msg, "rgb8")``: rows are ``step`` bytes apart (a driver
may pad each row), only the first ``width * channels`` bytes of a row are pixels, and the data holds
exactly ``height * step`` bytes. ``is_bigendian`` does not change 8-bit data but must be 0 or 1.

Speed matters (a 1280x720 bgra8 Azure Kinect frame arrives at 30 Hz): the message buffer is viewed
with numpy, never iterated in Python, and channels are reordered with one strided copy per channel.
"""
from __future__ import annotations

import array
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

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
    pixels = check_image_msg(msg)
    height, width, channels = pixels.shape
    order = DECODABLE_ENCODINGS[msg.encoding]
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
    if height == 0 or width == 0:
        raise ImageConversionError(f"cannot encode an empty {width}x{height} image")
    channels = CHANNELS[encoding]
    if encoding == "rgb8":
        pixels = np.ascontiguousarray(rgb)
    else:
        pixels = np.empty((height, width, channels), dtype=np.uint8)
        for in_channel, out_channel in enumerate(DECODABLE_ENCODINGS[encoding]):
            pixels[..., out_channel] = rgb[..., in_channel]
        if channels == 4:
            pixels[..., 3] = 255
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
    data.frombytes(memoryview(pixels).cast("B"))
    msg.data = data
    return msg
