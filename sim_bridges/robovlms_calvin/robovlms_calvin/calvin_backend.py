"""The Kinova driver's ``calvin`` backend: the driver's safety layer (clamps, workspace box, watchdog, e-stop)
in front of a CALVIN env. It only holds commands and reads state; the calvin_bridge node steps the env.
Registered as a robovlms_drivers backend plug-in by this package's setup.py."""
from __future__ import annotations

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, BackendUnavailable, Frame
from robovlms_io.names import KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_to_matrix


class CalvinBackend(ArmBackend):
    """Drives the CalvinCell hosted by the calvin_bridge in the same process (calvin_cell executable)."""

    name = "calvin"

    def __init__(self, cell) -> None:
        self.cell = cell

    @classmethod
    def from_parameters(cls, params) -> "CalvinBackend":
        raise BackendUnavailable("the calvin backend runs next to the calvin_bridge in one process: start "
                                 "`ros2 run robovlms_calvin calvin_cell` (or calvin.launch.py), not the driver alone")

    def connect(self) -> None:
        """The env is already up (the bridge built it)."""

    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        with self.cell.lock:
            linear, angular = np.asarray(linear, float), np.asarray(angular, float)
            if frame is Frame.TOOL:
                rotation = quaternion_to_matrix(self.cell.robot().pose_in_base(self.cell.base)[1])
                linear, angular = rotation @ linear, rotation @ angular
            self.cell.set_twist(linear, angular)

    def send_gripper(self, closure: float) -> None:
        with self.cell.lock:
            self.cell.set_gripper(closure)

    def stop(self) -> None:
        with self.cell.lock:
            self.cell.set_twist(np.zeros(3), np.zeros(3))

    def clear_faults(self) -> None:
        """CALVIN has no controller faults."""

    def read_state(self) -> ArmState:
        with self.cell.lock:
            robot = self.cell.robot()
            position, quaternion = robot.pose_in_base(self.cell.base)
        # The Panda's opening width, reported as the suite's gripper joint (0 open .. KNUCKLE_CLOSED_RAD closed).
        return ArmState(joint_positions=robot.joints, gripper_position=robot.closure * KNUCKLE_CLOSED_RAD,
                        ee_position=position, ee_quaternion=quaternion)

    def close(self) -> None:
        self.stop()
