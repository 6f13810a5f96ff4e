"""robovlms_msgs: the generated interfaces match their definitions and travel over real DDS unchanged."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from robovlms_msgs import msg as rmsg
from robovlms_msgs import srv as rsrv
from polling import wait_until

pytestmark = pytest.mark.ros

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "robovlms_msgs"
FIELD_LINE = re.compile(r"^(?P<type>[A-Za-z0-9_/]+(\[\d*\])?)\s+(?P<name>[a-z][a-z0-9_]*)\s*(#.*)?$")


def declared_fields(path: Path) -> list[tuple[str, bool]]:
    """(field name, documented?) for each field of a .msg/.srv; constants are skipped.

    A field is documented by an inline comment or by the comment heading its block of consecutive fields.
    """
    fields = []
    block_commented = False
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            block_commented = True
            continue
        if not line or line == "---":
            block_commented = False
            continue
        match = FIELD_LINE.match(line)
        if match and "=" not in line:
            fields.append((match["name"], block_commented or "#" in line))
    return fields


def interface_files() -> list[Path]:
    return sorted(PACKAGE_DIR.glob("msg/*.msg")) + sorted(PACKAGE_DIR.glob("srv/*.srv"))


def test_every_interface_in_cmake_is_generated():
    cmake = (PACKAGE_DIR / "CMakeLists.txt").read_text()
    for path in interface_files():
        assert f'"{path.parent.name}/{path.name}"' in cmake, f"{path.name} is not listed in CMakeLists.txt"
        module = rmsg if path.suffix == ".msg" else rsrv
        assert hasattr(module, path.stem), f"{path.stem} was not generated"


@pytest.mark.parametrize("path", interface_files(), ids=lambda p: p.name)
def test_every_field_is_documented_and_generated(path: Path):
    fields = declared_fields(path)
    assert fields, f"{path.name} declares no fields"
    undocumented = [name for name, documented in fields if not documented]
    assert not undocumented, f"{path.name}: fields without a comment: {undocumented}"
    if path.suffix == ".msg":
        generated = set(getattr(rmsg, path.stem).get_fields_and_field_types())
    else:
        service = getattr(rsrv, path.stem)
        generated = set(service.Request.get_fields_and_field_types())
        generated |= set(service.Response.get_fields_and_field_types())
    assert {name for name, _ in fields} == generated


def sample_command(i: int = 0) -> rmsg.EndEffectorCommand:
    command = rmsg.EndEffectorCommand()
    command.header.frame_id = "base_link"
    command.header.stamp.sec = 12 + i
    command.delta_position.x, command.delta_position.y, command.delta_position.z = 0.01, -0.02 * i, 0.005
    command.delta_rotation.z = 0.1
    command.gripper = 1.0
    command.period.nanosec = 100_000_000
    return command


def sample_messages():
    # Float fields use values that float32 represents exactly, so equality after transport is exact.
    chunk = rmsg.ActionChunk(commands=[sample_command(i) for i in range(3)])
    chunk.header.frame_id = "base_link"
    chunk.period.nanosec = 100_000_000
    status = rmsg.PolicyStatus(
        state=rmsg.PolicyStatus.STATE_HOLDING, instruction="open the drawer", target_period=0.125,
        tick_period=0.25, model_latency=0.03125, camera_names=["static", "wrist"], frame_ages=[0.0625, -1.0],
        missed_ticks=2, chunk_index=3, hold_reason="no frame yet from wrist")
    driver = rmsg.DriverStatus(
        state=rmsg.DriverStatus.STATE_ESTOP, backend="sim", command_age=0.375, estop_latched=True,
        rejected_commands=4, last_rejection="non-finite delta_position", fault="", gripper_closed=True)
    episode = rmsg.EpisodeInfo(episode_id=7, task="open_drawer", instruction="open the drawer",
                               variation="default", seed=-3, step=42, success=True)
    return [sample_command(), chunk, status, driver, episode]


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_message_round_trip_over_dds(ros_context, message):
    node = Node("interfaces_round_trip", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    received = []
    node.create_subscription(type(message), "round_trip", received.append, qos)
    publisher = node.create_publisher(type(message), "round_trip", qos)
    deadline = time.monotonic() + 10.0
    while not received and time.monotonic() < deadline:
        publisher.publish(message)
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    assert received, f"no {type(message).__name__} came back within 10 s"
    assert received[0] == message


def service_cases():
    return [
        (rsrv.StartTrial, rsrv.StartTrial.Request(instruction="press the button", task="press_button",
                                                  setting="distractors", max_steps=120),
         rsrv.StartTrial.Response(success=True, message="recording", trial_id="2026-11-22T10-00-00_press_button")),
        (rsrv.StopTrial, rsrv.StopTrial.Request(reason="operator"),
         rsrv.StopTrial.Response(success=True, message="stopped", trial_id="t1")),
        (rsrv.LabelTrial, rsrv.LabelTrial.Request(trial_id="", success=False, note="grasp slipped"),
         rsrv.LabelTrial.Response(accepted=True, message="labelled t1")),
        (rsrv.ResetEpisode, rsrv.ResetEpisode.Request(task="open_drawer", seed=-1, variation="paraphrase"),
         rsrv.ResetEpisode.Response(success=True, message="", task="open_drawer",
                                    instruction="pull the drawer open", seed=99)),
    ]


@pytest.mark.parametrize("service_type,request_msg,response_msg", service_cases(),
                         ids=lambda c: getattr(c, "__name__", ""))
def test_service_round_trip_over_dds(ros_context, service_type, request_msg, response_msg):
    node = Node("interfaces_service", context=ros_context)
    seen_requests = []

    def handle(request, response):
        seen_requests.append(request)
        for field in response.get_fields_and_field_types():
            setattr(response, field, getattr(response_msg, field))
        return response

    node.create_service(service_type, "round_trip_service", handle)
    client = node.create_client(service_type, "round_trip_service")
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        assert client.wait_for_service(timeout_sec=10.0), "service never appeared"
        future = client.call_async(request_msg)
        assert wait_until(future.done, interval=0.01), "no response within 10 s"
        assert seen_requests == [request_msg]
        assert future.result() == response_msg
    finally:
        executor.shutdown()
        node.destroy_node()
        spinner.join(timeout=5)


def test_constants_are_distinct():
    policy_states = {rmsg.PolicyStatus.STATE_IDLE, rmsg.PolicyStatus.STATE_RUNNING,
                     rmsg.PolicyStatus.STATE_HOLDING, rmsg.PolicyStatus.STATE_ERROR}
    driver_states = {rmsg.DriverStatus.STATE_READY, rmsg.DriverStatus.STATE_MOVING, rmsg.DriverStatus.STATE_WATCHDOG,
                     rmsg.DriverStatus.STATE_ESTOP, rmsg.DriverStatus.STATE_FAULT}
    assert len(policy_states) == 4 and len(driver_states) == 5


def test_rclpy_uses_fastrtps():
    assert rclpy.utilities.get_rmw_implementation_identifier() == "rmw_fastrtps_cpp"
