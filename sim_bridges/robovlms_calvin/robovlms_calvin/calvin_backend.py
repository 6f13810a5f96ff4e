"""The Kinova driver's ``calvin`` backend: the driver's safety layer in front of a CALVIN env that the
calvin_bridge hosts and steps. Registered as a robovlms_drivers backend plug-in by this package's setup.py."""
from __future__ import annotations

import numpy as np

from robovlms_drivers.kinova.backend import ArmState
from robovlms_drivers.kinova.hosted_cell import HostedCellBackend
from robovlms_io.names import KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_to_matrix


class CalvinBackend(HostedCellBackend):
    """Drives the CalvinCell hosted by the calvin_bridge in the same process (calvin_cell executable)."""

    name = "calvin"
    cell_executable = "ros2 run robovlms_calvin calvin_cell"
    launch_file = "calvin.launch.py"

    def tool_rotation(self) -> np.ndarray:
        return quaternion_to_matrix(self.cell.robot().pose_in_base(self.cell.base)[1])

    def read_state(self) -> ArmState:
        with self.cell.lock:
            robot = self.cell.robot()
            position, quaternion = robot.pose_in_base(self.cell.base)
        # The Panda's opening width, reported as the suite's gripper joint (0 open .. KNUCKLE_CLOSED_RAD closed).
        return ArmState(joint_positions=robot.joints, gripper_position=robot.closure * KNUCKLE_CLOSED_RAD,
                        ee_position=position, ee_quaternion=quaternion)
