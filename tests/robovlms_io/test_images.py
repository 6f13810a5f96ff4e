"""sensor_msgs/Image <-> RGB conversion: every encoding, padded rows, malformed messages, DDS round trip."""
from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from robovlms_io.images import ImageConversionError, image_msg_to_rgb, rgb_to_image_msg

pytestmark = pytest.mark.ros

# A 2x3 RGB image with every byte distinct, so any channel or row mix-up shows.
RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7 + 3


def raw_message(pixels: np.ndarray, encoding: str, padding: int = 0, pad_byte: int = 0xEE) -> Image:
    """An Image built by hand, byte by byte, as a driver would send it (rows optionally padded)."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), pad_byte, np.uint8)], axis=1)
    return Image(
        height=height, width=width, encoding=encoding, is_bigendian=0, step=padded.shape[1], data=padded.tobytes()
    )


def driver_bytes(rgb: np.ndarray, encoding: str, alpha_value: int = 200) -> np.ndarray:
    """The pixel bytes a driver sends for ``encoding`` (alpha is ignored on decoding, whatever it is)."""
    alpha = np.full(rgb.shape[:2] + (1,), alpha_value, np.uint8)
    return {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], axis=2),
    }[encoding]


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("padding", [0, 5])
def test_colour_encodings_give_rgb_pixels(encoding, padding):
    out = image_msg_to_rgb(raw_message(driver_bytes(RGB, encoding), encoding, padding))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("padding", [0, 3])
def test_mono8_is_replicated_to_three_channels(padding):
    grey = np.array([[0, 10, 20], [30, 40, 255]], np.uint8)
    out = image_msg_to_rgb(raw_message(grey, "mono8", padding))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


def test_bigendian_flag_is_irrelevant_for_8_bit_but_validated():
    msg = raw_message(driver_bytes(RGB, "bgr8"), "bgr8")
    msg.is_bigendian = 1
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)
    msg.is_bigendian = 2
    with pytest.raises(ImageConversionError, match="is_bigendian=2"):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize("encoding", ["yuv422", "16UC1", "rgb16", "32FC1", "bayer_rggb8", "RGB8", ""])
def test_unsupported_encodings_are_rejected_by_name(encoding):
    msg = Image(height=2, width=3, encoding=encoding, step=18, data=bytes(36))
    with pytest.raises(ImageConversionError, match=f"unsupported image encoding '{encoding}' \\(3x2\\)"):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize(
    "height, width, step, n_bytes, message",
    [
        (2, 3, 9, 17, r"data has 17 bytes, expected step\*height = 18"),  # short data
        (2, 3, 9, 19, r"data has 19 bytes, expected step\*height = 18"),  # trailing bytes
        (2, 3, 8, 16, r"step 8 is smaller than width\*channels = 9"),
        (0, 3, 9, 0, r"zero size 3x0"),
        (2, 0, 0, 0, r"zero size 0x2"),
        (100_000, 100_000, 300_000, 64, r"100000x100000, step 300000: data has 64 bytes"),
    ],
)
def test_malformed_sizes_are_rejected_with_the_numbers(height, width, step, n_bytes, message):
    msg = Image(height=height, width=width, encoding="rgb8", step=step, data=bytes(n_bytes))
    with pytest.raises(ImageConversionError, match=message) as err:
        image_msg_to_rgb(msg)
    assert isinstance(err.value, ValueError) and "rgb8" in str(err.value)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_round_trip_rgb_to_msg_to_rgb(encoding):
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    stamp = Time(sec=12, nanosec=345)
    msg = rgb_to_image_msg(rgb, encoding, frame_id="rgb_camera_link", stamp=stamp)
    channels = 4 if encoding.endswith("a8") else 3
    assert (msg.height, msg.width, msg.step, msg.encoding) == (48, 64, 64 * channels, encoding)
    assert msg.header.frame_id == "rgb_camera_link" and msg.header.stamp == stamp and msg.is_bigendian == 0
    expected_bytes = driver_bytes(rgb, encoding, alpha_value=255).ravel()  # published alpha is opaque
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8), expected_bytes)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_encoding_rejects_bad_arrays_and_encodings():
    with pytest.raises(ImageConversionError, match="cannot encode 'mono8'"):
        rgb_to_image_msg(RGB, "mono8")
    with pytest.raises(ImageConversionError, match=r"uint8 array \(H, W, 3\)"):
        rgb_to_image_msg(RGB.astype(np.float32))
    with pytest.raises(ImageConversionError, match=r"\(2, 3\)"):
        rgb_to_image_msg(RGB[..., 0])
    with pytest.raises(ImageConversionError, match="empty"):
        rgb_to_image_msg(np.zeros((0, 4, 3), np.uint8))


def test_full_hd_bgra8_conversion_is_fast():
    rgb = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    msg = rgb_to_image_msg(rgb, "bgra8")
    durations = []
    for _ in range(20):
        start = time.perf_counter()
        out = image_msg_to_rgb(msg)
        durations.append(time.perf_counter() - start)
    np.testing.assert_array_equal(out, rgb)
    assert np.median(durations) < 0.025  # loose: ~1 ms on a laptop core; a per-pixel loop would take seconds


def test_message_received_over_dds_converts(ros_context):
    """rclpy hands subscribers a deserialised buffer; conversion must work on it too (padded bgra8)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data

    node = Node("image_conversion_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received: list[Image] = []
    node.create_subscription(Image, "rgb/image_raw", received.append, qos_profile_sensor_data)
    publisher = node.create_publisher(Image, "rgb/image_raw", qos_profile_sensor_data)
    sent = raw_message(driver_bytes(RGB, "bgra8"), "bgra8", padding=4)
    deadline = time.monotonic() + 10.0
    while not received and time.monotonic() < deadline:
        publisher.publish(sent)
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    node.destroy_node()
    assert received, "no image arrived over DDS within 10 s"
    assert received[0].step == 3 * 4 + 4
    np.testing.assert_array_equal(image_msg_to_rgb(received[0]), RGB)


def test_check_image_msg_validates_without_copying():
    from robovlms_io.images import check_image_msg

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = rgb_to_image_msg(rgb, "bgra8")
    pixels = check_image_msg(msg)
    assert pixels.shape == (2, 3, 4) and np.shares_memory(pixels, np.frombuffer(msg.data, np.uint8))
    msg.step = 5
    with pytest.raises(ImageConversionError, match="step 5"):
        check_image_msg(msg)
