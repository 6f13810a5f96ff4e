"""Real cell: Azure Kinect (static) + RealSense (wrist) cameras, the Kinova driver on the kortex backend,
the policy node and, with record:=true, the trial recorder.

    ros2 launch robovlms_bringup kinova_real.launch.py robot_ip:=192.168.1.10 checkpoint:=/path/to/ckpt

Every argument is checked before any process starts (booleans by their choices, the checkpoint directory by
robovlms_io.launch_support), so a bad one aborts the launch without leaving nodes behind. String arguments
that look like numbers (serials such as 000489192412) reach the nodes as typed: they go through a quoted
parameter file instead of launch_ros' own, which would retype them.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from robovlms_io.launch_support import BOOLEAN_CHOICES, checkpoint_problem, string_parameters_file
from robovlms_policy.vla.runtimes import RUNTIMES


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("robot_ip", default_value="192.168.1.10", description="IP address of the Gen3 arm."),
        DeclareLaunchArgument("checkpoint", description="Policy checkpoint directory (required)."),
        DeclareLaunchArgument("runtime", default_value="eager", choices=list(RUNTIMES),
                              description="Policy inference runtime (onnx: a checkpoint written by robovlms-export)."),
        DeclareLaunchArgument("realsense_serial", default_value="",
                              description="Serial number of the wrist RealSense (empty: first found)."),
        DeclareLaunchArgument("azure_kinect_serial", default_value="",
                              description="Serial number of the static Azure Kinect (empty: first found)."),
        DeclareLaunchArgument("use_official_camera_drivers", default_value="false", choices=list(BOOLEAN_CHOICES),
                              description="Use realsense2_camera / azure_kinect_ros_driver instead of ours."),
        DeclareLaunchArgument("record", default_value="false", choices=list(BOOLEAN_CHOICES),
                              description="Also start the trial recorder."),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])


def _nodes(context):
    """The cell's nodes, built once every argument has a value and has been checked."""
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    problem = checkpoint_problem(value("checkpoint"))
    if problem:
        raise RuntimeError(f"kinova_real.launch.py: {problem}")
    config_dir = PathJoinSubstitution([FindPackageShare("robovlms_bringup"), "config"])
    cameras_yaml = PathJoinSubstitution([config_dir, "cameras.yaml"])
    driver_yaml = PathJoinSubstitution([config_dir, "kinova_driver.yaml"])
    policy_yaml = PathJoinSubstitution([config_dir, "policy_node.yaml"])
    recorder_yaml = PathJoinSubstitution([config_dir, "trial_recorder.yaml"])
    official = LaunchConfiguration("use_official_camera_drivers")
    realsense_serial, kinect_serial = value("realsense_serial"), value("azure_kinect_serial")

    ours = [
        Node(package="robovlms_drivers", executable="realsense_camera", name="realsense_camera", output="screen",
             parameters=[cameras_yaml, string_parameters_file("realsense_camera", {"serial_number": realsense_serial})],
             condition=UnlessCondition(official)),
        Node(package="robovlms_drivers", executable="azure_kinect_camera", name="azure_kinect_camera",
             output="screen",
             parameters=[cameras_yaml, string_parameters_file("azure_kinect_camera", {"serial_number": kinect_serial})],
             condition=UnlessCondition(official)),
    ]
    # The official drivers publish the same topics, encodings and frame ids with these settings.
    official_drivers = [
        Node(package="realsense2_camera", executable="realsense2_camera_node", namespace="camera", name="camera",
             output="screen", condition=IfCondition(official),
             parameters=[string_parameters_file("camera", {"serial_no": realsense_serial}),
                         {"enable_color": True, "enable_depth": False, "rgb_camera.color_profile": "640,480,30"}]),
        Node(package="azure_kinect_ros_driver", executable="node", name="azure_kinect_ros_driver", output="screen",
             condition=IfCondition(official),
             parameters=[string_parameters_file("azure_kinect_ros_driver", {"sensor_sn": kinect_serial}),
                         {"color_enabled": True, "color_format": "bgra", "color_resolution": "720P", "fps": 30,
                          "depth_enabled": False}]),
    ]
    robot_and_policy = [
        Node(package="robovlms_drivers", executable="kinova_driver", name="kinova_driver", output="screen",
             parameters=[driver_yaml, string_parameters_file("kinova_driver", {"backend": "kortex",
                                                                               "robot_ip": value("robot_ip")})]),
        Node(package="robovlms_policy", executable="policy_node", name="policy_node", output="screen",
             parameters=[policy_yaml, string_parameters_file("policy_node", {"checkpoint": value("checkpoint"),
                                                                          "runtime": value("runtime")})]),
        Node(package="robovlms_policy", executable="trial_recorder", name="trial_recorder", output="screen",
             parameters=[recorder_yaml], condition=IfCondition(LaunchConfiguration("record"))),
    ]
    return ours + official_drivers + robot_and_policy
