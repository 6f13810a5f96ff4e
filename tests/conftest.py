"""Shared fixtures: an isolated DDS domain per test session and an rclpy context per test."""
from __future__ import annotations

import os
import random

# Each pytest session talks on its own DDS domain, restricted to this host, so parallel runs on a
# shared machine never see each other's topics. Must be set before rclpy is imported anywhere.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture
def ros_context():
    """A fresh, initialised rclpy context, shut down after the test."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    if context.ok():
        rclpy.shutdown(context=context)
