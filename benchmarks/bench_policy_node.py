"""Policy node benchmarks (not a test): per-tick overhead without the model, and tick cadence with a model.

1. Overhead: everything the node does on its executor thread for one control tick except the forward pass,
   for a 1280x720 bgra8 (Azure Kinect) + 640x480 rgb8 (RealSense) pair: CDR deserialisation of both images
   (rclpy), their validation in the image callbacks, and the tick itself (freshness checks, chunk executor,
   command + status publication). Goal: <= 2 ms p50, <= 5 ms p99. The conversion to RGB runs on the
   inference thread, before the forward pass; it is timed separately.
2. Cadence: the node runs with a tiny checkpoint over real DDS while both cameras publish at full resolution;
   every tick's lateness against the ideal 10 Hz schedule is recorded. The cameras publish from a process of
   their own, as real camera drivers do. Goal: p99 <= 3 ms, 0 missed ticks.

Usage: python benchmarks/bench_policy_node.py [--ticks 2000] [--cadence-seconds 600] [--camera-rate 30]
       [--checkpoint DIR]
Prints a markdown table for the README's performance section.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from robovlms_io.images import image_msg_to_rgb, rgb_to_image_msg  # noqa: E402
from robovlms_io.qos import SENSOR_SUBSCRIPTION as IMAGE_QOS  # noqa: E402
from robovlms_policy.node.policy_node import PolicyNode  # noqa: E402
from robovlms_policy.vla.init_checkpoint import main as init_checkpoint  # noqa: E402
from robovlms_policy.vla.policy import PolicyOutput, VLAPolicy  # noqa: E402

STATIC = rgb_to_image_msg(np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8), "bgra8",
                          "rgb_camera_link")
WRIST = rgb_to_image_msg(np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8), "rgb8",
                         "camera_color_optical_frame")


class InstantPolicy:
    """Returns a fixed chunk at once, so the measured cost is the node's own."""

    camera_names = ["static", "wrist"]

    def reset(self, instruction: str) -> None:
        pass

    def step(self, images, proprio=None) -> PolicyOutput:
        return PolicyOutput(arm=np.full((10, 6), 1e-3), gripper=np.full(10, 0.2), latency_s=0.0)


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def bench_overhead(ticks: int) -> dict[str, tuple[float, float, float]]:
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PolicyNode(policy=InstantPolicy(), context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.destroy_timer(node._timer)  # ticks are driven by hand below
    node._on_instruction(String(data="open the drawer"))
    raw = {"static": serialize_message(STATIC), "wrist": serialize_message(WRIST)}
    timings: dict[str, list[float]] = {"deserialise": [], "validate": [], "tick": [], "total": [],
                                       "convert (inference thread)": []}
    for i in range(ticks + 50):
        t0 = time.perf_counter()
        static_msg, wrist_msg = deserialize_message(raw["static"], Image), deserialize_message(raw["wrist"], Image)
        t1 = time.perf_counter()
        node._on_image("static", static_msg)
        node._on_image("wrist", wrist_msg)
        t2 = time.perf_counter()
        node._on_tick()
        t3 = time.perf_counter()
        image_msg_to_rgb(static_msg), image_msg_to_rgb(wrist_msg)
        t4 = time.perf_counter()
        if i >= 50:  # warm-up: first chunk, allocator
            for key, value in (("deserialise", t1 - t0), ("validate", t2 - t1), ("tick", t3 - t2),
                               ("total", t3 - t0), ("convert (inference thread)", t4 - t3)):
                timings[key].append(value)
        time.sleep(0.002)  # let the inference thread hand over its chunk, as between real ticks
    node.destroy_node()
    rclpy.shutdown(context=context)
    return {key: percentiles(values) for key, values in timings.items()}


def publish_cameras(rate_hz: float, stop: "multiprocessing.synchronize.Event") -> None:
    """Both cameras at full resolution from a process of their own, as real camera drivers are."""
    rclpy.init()
    node = Node("bench_cameras")
    static_pub = node.create_publisher(Image, "/rgb/image_raw", IMAGE_QOS)
    wrist_pub = node.create_publisher(Image, "/camera/camera/color/image_raw", IMAGE_QOS)
    node.create_timer(1 / rate_hz, lambda: (static_pub.publish(STATIC), wrist_pub.publish(WRIST)))
    while not stop.is_set():
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


def bench_cadence(seconds: float, checkpoint: Path, camera_rate_hz: float) -> dict[str, float]:
    stop = multiprocessing.get_context("spawn").Event()
    cameras_process = multiprocessing.get_context("spawn").Process(target=publish_cameras,
                                                                   args=(camera_rate_hz, stop), daemon=True)
    cameras_process.start()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PolicyNode(policy=VLAPolicy.from_checkpoint(checkpoint), context=context)
    tick_times: list[float] = []
    original_tick = node._on_tick

    def timed_tick() -> None:
        tick_times.append(time.monotonic())
        original_tick()

    node.destroy_timer(node._timer)
    node._timer = node.create_timer(node._period, timed_tick)
    operator = Node("bench_operator", context=context)
    instruction = operator.create_publisher(String, "/instruction", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(operator)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    time.sleep(1.0)
    instruction.publish(String(data="open the drawer"))
    time.sleep(seconds)
    executor.shutdown()
    spinner.join(timeout=5)
    stop.set()
    cameras_process.join(timeout=10)
    missed = node._missed_ticks
    latency = node._worker.latency_s
    node.destroy_node()
    operator.destroy_node()
    rclpy.shutdown(context=context)
    ticks = np.asarray(tick_times[10:])
    ideal = ticks[0] + node._period * np.arange(len(ticks))
    lateness = np.abs(ticks - ideal - np.median(ticks - ideal))
    periods = np.diff(ticks)
    return {"ticks": len(ticks), "missed": missed, "lateness_p50_ms": float(np.percentile(lateness, 50) * 1e3),
            "lateness_p99_ms": float(np.percentile(lateness, 99) * 1e3), "lateness_max_ms": float(lateness.max() * 1e3),
            "period_p99_ms": float(np.percentile(np.abs(periods - node._period), 99) * 1e3),
            "model_latency_ms": latency * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--cadence-seconds", type=float, default=600.0)
    parser.add_argument("--camera-rate", type=float, default=30.0, help="Hz of both full-resolution cameras")
    parser.add_argument("--checkpoint", type=Path, help="default: a fresh tiny paligemma policy_head checkpoint")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}")
    overhead = bench_overhead(args.ticks)
    print("\n| executor-thread work per tick (1280x720 bgra8 + 640x480 rgb8), ms | p50 | p99 | max |\n"
          "|---|---|---|---|")
    for key, (p50, p99, worst) in overhead.items():
        print(f"| {key} | {p50:.2f} | {p99:.2f} | {worst:.2f} |")
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = Path(tempfile.mkdtemp()) / "tiny"
        init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", str(checkpoint)])
    cadence = bench_cadence(args.cadence_seconds, checkpoint, args.camera_rate)
    print(f"\n| cadence over {args.cadence_seconds:.0f} s ({cadence['ticks']} ticks, tiny model "
          f"{cadence['model_latency_ms']:.0f} ms/forward, cameras at {args.camera_rate:g} Hz) | value |\n|---|---|")
    for key in ("missed", "lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms", "period_p99_ms"):
        print(f"| {key} | {cadence[key]:.2f} |" if isinstance(cadence[key], float) else f"| {key} | {cadence[key]} |")


if __name__ == "__main__":
    main()
