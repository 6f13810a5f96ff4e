"""The trial instruction's liveliness lease over real DDS, publisher and watcher in one process (as make demo
runs the recorder beside the policy node): an owner asserting every TRIAL_LEASE_ASSERT_S stays alive past many
leases, and one that goes away is declared lost within about a watch lease."""
from __future__ import annotations

import time

import pytest
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

from robovlms_io import qos

pytestmark = pytest.mark.ros


def test_a_live_owner_keeps_its_lease_and_a_gone_one_loses_it(ros_context):
    import rclpy

    owner = rclpy.create_node("lease_owner", context=ros_context)
    watcher = rclpy.create_node("lease_watcher", context=ros_context)
    changes: list[tuple[float, int]] = []
    watcher.create_subscription(String, "/lease_test", lambda msg: None, qos.TRIAL_INSTRUCTION_WATCH,
                                event_callbacks=SubscriptionEventCallbacks(
                                    liveliness=lambda info: changes.append((time.monotonic(), info.alive_count))))
    publisher = owner.create_publisher(String, "/lease_test", qos.TRIAL_INSTRUCTION)
    owner.create_timer(qos.TRIAL_LEASE_ASSERT_S, publisher.assert_liveliness)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(owner)
    executor.add_node(watcher)
    publisher.publish(String(data="open the drawer"))
    start = time.monotonic()
    while time.monotonic() - start < 2.0:  # four watch leases
        executor.spin_once(timeout_sec=0.02)
    assert changes and changes[-1][1] == 1, changes  # alive, and never lost meanwhile
    assert all(count == 1 for _, count in changes), changes
    executor.remove_node(owner)
    owner.destroy_node()
    gone = time.monotonic()
    while time.monotonic() - gone < 3.0 and changes[-1][1] != 0:
        executor.spin_once(timeout_sec=0.02)
    assert changes[-1][1] == 0 and changes[-1][0] - gone < 2.0, changes
    watcher.destroy_node()
