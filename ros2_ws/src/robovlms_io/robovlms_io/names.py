"""Topic, frame and joint names of the suite. Topics are relative unless the official drivers publish them
absolute (the cameras); every one is still a parameter of the node that uses it."""
from __future__ import annotations

from dataclasses import dataclass

BASE_FRAME = "base_link"
TOOL_FRAME = "tool_frame"

ARM_JOINTS = tuple(f"joint_{i}" for i in range(1, 8))
GRIPPER_JOINT = "robotiq_85_left_knuckle_joint"
KNUCKLE_CLOSED_RAD = 0.8  # the knuckle joint angle of a fully closed Robotiq 2F-85

INSTRUCTION_TOPIC = "/instruction"
COMMAND_TOPIC = "ee_command"
CHUNK_TOPIC = "action_chunk"
POLICY_STATUS_TOPIC = "policy_status"
JOINT_STATES_TOPIC = "joint_states"
EE_POSE_TOPIC = "ee_pose"
DRIVER_STATUS_TOPIC = "driver_status"
ESTOP_TOPIC = "estop"
EPISODE_INFO_TOPIC = "episode_info"
RESET_EPISODE_SERVICE = "reset_episode"


@dataclass(frozen=True)
class Camera:
    """A camera of the cell as the official ROS drivers publish it by default."""

    name: str  # the checkpoint's camera name
    image_topic: str
    info_topic: str
    encoding: str
    frame_id: str


# Azure Kinect (azure_kinect_ros_driver): static view, bgra8. RealSense D4xx (realsense2_camera): wrist, rgb8.
STATIC_CAMERA = Camera("static", "/rgb/image_raw", "/rgb/camera_info", "bgra8", "rgb_camera_link")
WRIST_CAMERA = Camera("wrist", "/camera/camera/color/image_raw", "/camera/camera/color/camera_info", "rgb8",
                      "camera_color_optical_frame")
CAMERAS = {camera.name: camera for camera in (STATIC_CAMERA, WRIST_CAMERA)}
