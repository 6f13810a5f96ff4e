"""FAKE of Kinova's kortex_api (not installable here: the wheel is only on Kinova's artifactory).

Only the names kortex_backend.py uses exist; clients record every call so tests can check what the
backend would send to the robot. `install()` registers the fake modules in sys.modules."""
from __future__ import annotations

import sys
import types
from types import SimpleNamespace

CARTESIAN_REFERENCE_FRAME_BASE, CARTESIAN_REFERENCE_FRAME_TOOL = 3, 2
GRIPPER_POSITION = 3
SINGLE_LEVEL_SERVOING = 2
ARMSTATE_IN_FAULT = 4  # Common.ArmState


class _Message(SimpleNamespace):
    """Protobuf-like message: attributes settable, nested messages created by the subclasses."""


class TwistCommand(_Message):
    def __init__(self):
        super().__init__(reference_frame=0, duration=-1, twist=_Message(linear_x=0.0, linear_y=0.0, linear_z=0.0,
                                                                         angular_x=0.0, angular_y=0.0, angular_z=0.0))


class _Fingers(list):
    def add(self):
        self.append(_Message(finger_identifier=0, value=0.0))
        return self[-1]


class GripperCommand(_Message):
    def __init__(self):
        super().__init__(mode=0, gripper=_Message(finger=_Fingers()))


class ServoingModeInformation(_Message):
    def __init__(self):
        super().__init__(servoing_mode=0)


class CreateSessionInfo(_Message):
    pass


CALLS: list[tuple[str, object]] = []
FEEDBACK = SimpleNamespace(value=None)
FAILING: set[str] = set()  # method names that raise, to exercise error paths


class _Recorder:
    """Records calls to the methods the real client has (METHODS); any other name is an AttributeError."""

    METHODS: tuple[str, ...] = ()

    def __init__(self, *args):
        self.args = args

    def __getattr__(self, name):
        if name not in self.METHODS:
            raise AttributeError(f"{type(self).__name__} has no method {name!r} in kortex_api")

        def record(*args):
            CALLS.append((name, args[0] if args else None))
            if name in FAILING:
                raise RuntimeError(f"{name} failed")
        return record


class TCPTransport(_Recorder):
    METHODS = ("connect", "disconnect")


class RouterClient(_Recorder):
    METHODS = ()


class SessionManager(_Recorder):
    METHODS = ("CreateSession", "CloseSession")


class BaseClient(_Recorder):
    METHODS = ("SetServoingMode", "SendTwistCommand", "SendGripperCommand", "Stop", "ClearFaults")


class BaseCyclicClient(_Recorder):
    METHODS = ()

    def RefreshFeedback(self):
        CALLS.append(("RefreshFeedback", None))
        return FEEDBACK.value


def install() -> None:
    CALLS.clear()
    FAILING.clear()
    modules = {
        "kortex_api": {},
        "kortex_api.TCPTransport": {"TCPTransport": TCPTransport},
        "kortex_api.RouterClient": {"RouterClient": RouterClient},
        "kortex_api.SessionManager": {"SessionManager": SessionManager},
        "kortex_api.autogen.client_stubs.BaseClientRpc": {"BaseClient": BaseClient},
        "kortex_api.autogen.client_stubs.BaseCyclicClientRpc": {"BaseCyclicClient": BaseCyclicClient},
        "kortex_api.autogen.messages.Base_pb2": {
            "TwistCommand": TwistCommand, "GripperCommand": GripperCommand,
            "ServoingModeInformation": ServoingModeInformation, "GRIPPER_POSITION": GRIPPER_POSITION,
            "CARTESIAN_REFERENCE_FRAME_BASE": CARTESIAN_REFERENCE_FRAME_BASE,
            "CARTESIAN_REFERENCE_FRAME_TOOL": CARTESIAN_REFERENCE_FRAME_TOOL,
            "SINGLE_LEVEL_SERVOING": SINGLE_LEVEL_SERVOING},
        "kortex_api.autogen.messages.Common_pb2": {"ARMSTATE_IN_FAULT": ARMSTATE_IN_FAULT},
        "kortex_api.autogen.messages.Session_pb2": {"CreateSessionInfo": CreateSessionInfo},
    }
    for name in ["kortex_api.autogen", "kortex_api.autogen.client_stubs", "kortex_api.autogen.messages"]:
        modules.setdefault(name, {})
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


def uninstall() -> None:
    for name in [n for n in sys.modules if n == "kortex_api" or n.startswith("kortex_api.")]:
        del sys.modules[name]
