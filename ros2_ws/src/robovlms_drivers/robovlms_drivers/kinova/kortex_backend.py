"""The one module that touches Kinova's kortex_api: the Kortex backend and the Kortex unit conventions (deg/s
twists, fixed-axis Euler tool poses in degrees, 0..360 deg joints, Robotiq opening in %), which are tested
without the SDK. kortex_api itself is imported when a backend is built."""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, BackendUnavailable, Frame
from robovlms_io.names import KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_multiply, rotvec_to_quaternion

KORTEX_INSTALL_HINT = (
    "kortex_api (Kinova's Python API) is not installed. It is not on PyPI: download the wheel "
    "kortex_api-2.6.0.post3-py3-none-any.whl from Kinova's artifactory (linked from the "
    "Kinovarobotics/kortex README) and run `pip install kortex_api-2.6.0.post3-py3-none-any.whl` "
    "in this environment (it pins protobuf 3.20)."
)


@dataclass
class KortexConfig:
    """Connection settings of a Gen3 arm (the factory defaults of the robot's web app)."""

    robot_ip: str = "192.168.1.10"
    port: int = 10000
    username: str = "admin"
    password: str = "admin"
    session_inactivity_timeout_ms: int = 60000
    connection_inactivity_timeout_ms: int = 2000


def to_kortex_twist(linear_mps, angular_radps) -> tuple[list[float], list[float]]:
    """Kortex TwistCommand units: linear m/s, angular deg/s."""
    return [float(v) for v in linear_mps], [math.degrees(float(w)) for w in angular_radps]


def kortex_euler_deg_to_quaternion(theta_x: float, theta_y: float, theta_z: float) -> np.ndarray:
    """Kortex tool pose angles (degrees, fixed-axis X then Y then Z, i.e. R = Rz Ry Rx) -> quaternion xyzw."""
    qx = rotvec_to_quaternion([math.radians(theta_x), 0.0, 0.0])
    qy = rotvec_to_quaternion([0.0, math.radians(theta_y), 0.0])
    qz = rotvec_to_quaternion([0.0, 0.0, math.radians(theta_z)])
    return quaternion_multiply(qz, quaternion_multiply(qy, qx))


def kortex_joint_deg_to_rad(angles_deg) -> np.ndarray:
    """Kortex actuator positions (0..360 deg) -> radians wrapped to (-pi, pi], as in the URDF."""
    rad = np.radians(np.asarray(angles_deg, float))
    return -((-rad + math.pi) % (2 * math.pi) - math.pi)


def robotiq_percent_to_knuckle(percent: float) -> float:
    """Robotiq 2F-85 opening feedback (0 open .. 100 closed, %) -> knuckle joint angle (rad)."""
    return float(np.clip(percent, 0.0, 100.0)) / 100.0 * KNUCKLE_CLOSED_RAD


def _import_kortex():
    """Import the kortex_api modules lazily so the rest of the package works without it."""
    try:
        return {
            "TCPTransport": importlib.import_module("kortex_api.TCPTransport").TCPTransport,
            "RouterClient": importlib.import_module("kortex_api.RouterClient").RouterClient,
            "SessionManager": importlib.import_module("kortex_api.SessionManager").SessionManager,
            "BaseClient": importlib.import_module("kortex_api.autogen.client_stubs.BaseClientRpc").BaseClient,
            "BaseCyclicClient": importlib.import_module(
                "kortex_api.autogen.client_stubs.BaseCyclicClientRpc").BaseCyclicClient,
            "Base_pb2": importlib.import_module("kortex_api.autogen.messages.Base_pb2"),
            "Session_pb2": importlib.import_module("kortex_api.autogen.messages.Session_pb2"),
            "Common_pb2": importlib.import_module("kortex_api.autogen.messages.Common_pb2"),
        }
    except ImportError as err:
        raise BackendUnavailable(f"{KORTEX_INSTALL_HINT} (import error: {err})") from err


class KortexBackend(ArmBackend):
    """Gen3 + Robotiq 2F-85 over a Kortex TCP session in single-level servoing (high-level twists)."""

    name = "kortex"

    @classmethod
    def from_parameters(cls, params) -> "KortexBackend":
        return cls(KortexConfig(params.robot_ip, params.robot_port, params.username, params.password))

    def __init__(self, config: KortexConfig | None = None) -> None:
        self.config = config or KortexConfig()
        self._api = _import_kortex()
        self._transport = None
        self._session = None
        self._base = None
        self._base_cyclic = None

    def connect(self) -> None:
        api, cfg = self._api, self.config
        try:
            self._transport = api["TCPTransport"]()
            router = api["RouterClient"](self._transport, lambda err: None)
            self._transport.connect(cfg.robot_ip, cfg.port)
            session_info = api["Session_pb2"].CreateSessionInfo()
            session_info.username = cfg.username
            session_info.password = cfg.password
            session_info.session_inactivity_timeout = cfg.session_inactivity_timeout_ms
            session_info.connection_inactivity_timeout = cfg.connection_inactivity_timeout_ms
            self._session = api["SessionManager"](router)
            self._session.CreateSession(session_info)
            self._base = api["BaseClient"](router)
            self._base_cyclic = api["BaseCyclicClient"](router)
            servoing = api["Base_pb2"].ServoingModeInformation()
            servoing.servoing_mode = api["Base_pb2"].SINGLE_LEVEL_SERVOING
            self._base.SetServoingMode(servoing)
        except Exception as err:  # the SDK raises its own exception types; report any as unavailable
            self.close()  # no half-open session or socket left behind
            raise BackendUnavailable(f"cannot open a Kortex session to {cfg.robot_ip}:{cfg.port}: {err}") from err

    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        base_pb2 = self._api["Base_pb2"]
        linear_mps, angular_degps = to_kortex_twist(linear, angular)
        command = base_pb2.TwistCommand()
        command.reference_frame = (base_pb2.CARTESIAN_REFERENCE_FRAME_BASE if frame is Frame.BASE
                                   else base_pb2.CARTESIAN_REFERENCE_FRAME_TOOL)
        command.duration = 0  # held until the next command; the driver's watchdog bounds it
        twist = command.twist
        twist.linear_x, twist.linear_y, twist.linear_z = linear_mps
        twist.angular_x, twist.angular_y, twist.angular_z = angular_degps
        self._base.SendTwistCommand(command)

    def send_gripper(self, closure: float) -> None:
        base_pb2 = self._api["Base_pb2"]
        command = base_pb2.GripperCommand()
        command.mode = base_pb2.GRIPPER_POSITION
        finger = command.gripper.finger.add()
        finger.finger_identifier = 1
        finger.value = float(np.clip(closure, 0.0, 1.0))
        self._base.SendGripperCommand(command)

    def stop(self) -> None:
        self._base.Stop()

    def clear_faults(self) -> None:
        self._base.ClearFaults()

    def read_state(self) -> ArmState:
        feedback = self._base_cyclic.RefreshFeedback()
        base = feedback.base
        grippers = feedback.interconnect.oneof_tool_feedback.gripper_feedback
        gripper_percent = grippers[0].motor[0].position if len(grippers) and len(grippers[0].motor) else 0.0
        # active_state is a Common.ArmState; the fault banks are non-zero while a safety fault is active.
        in_fault = (base.active_state == self._api["Common_pb2"].ARMSTATE_IN_FAULT
                    or base.fault_bank_a != 0 or base.fault_bank_b != 0)
        return ArmState(
            joint_positions=kortex_joint_deg_to_rad([a.position for a in feedback.actuators][:7]),
            gripper_position=robotiq_percent_to_knuckle(gripper_percent),
            ee_position=np.array([base.tool_pose_x, base.tool_pose_y, base.tool_pose_z]),
            ee_quaternion=kortex_euler_deg_to_quaternion(
                base.tool_pose_theta_x, base.tool_pose_theta_y, base.tool_pose_theta_z),
            fault=(f"arm in fault (fault banks a={base.fault_bank_a:#x} b={base.fault_bank_b:#x}; "
                   "call driver/clear_faults)") if in_fault else "",
        )

    def close(self) -> None:
        """Stop the arm and release the session and socket; each step runs even if an earlier one fails."""
        steps = [("Stop", self._base and self._base.Stop), ("CloseSession", self._session and self._session.CloseSession),
                 ("disconnect", self._transport and self._transport.disconnect)]
        self._base = self._base_cyclic = self._session = self._transport = None
        errors = []
        for name, call in steps:
            if call:
                try:
                    call()
                except Exception as err:  # keep releasing the rest
                    errors.append(f"{name}: {err}")
        if errors:
            raise BackendUnavailable(f"errors while closing the Kortex session: {'; '.join(errors)}")
