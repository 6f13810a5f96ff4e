"""SimplerEnv cell: simpler_bridge and the Kinova driver on the simpler backend in one process (`simpler_cell`,
from robovlms_simpler), plus the policy node at the robot's control rate and, with record:=true, the trial
recorder. The bridge publishes the benchmark's camera on the static camera's topics.

    ros2 launch robovlms_bringup simpler.launch.py checkpoint:=/path/to/bridge_ckpt robot:=widowx

Needs SimplerEnv (or ManiSkill3 with backend:=maniskill3) and a Vulkan GPU; without them the cell exits with
the reason and the setup steps. Episodes are driven through reset_episode; `robovlms-simpler-eval run` does that.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from robovlms_io.launch_support import BOOLEAN_CHOICES, checkpoint_problem, string_parameters_file
from robovlms_policy.vla.runtimes import RUNTIMES
from robovlms_simpler.actions import ROTATION_FORMATS
from robovlms_simpler.simpler_setup import BACKENDS
from robovlms_simpler.tasks import ROBOTS


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("checkpoint", description="Policy checkpoint directory trained for the robot."),
        DeclareLaunchArgument("robot", default_value="widowx", choices=list(ROBOTS),
                              description="SimplerEnv robot (google_robot: 3 Hz, widowx: 5 Hz)."),
        DeclareLaunchArgument("backend", default_value="maniskill2", choices=list(BACKENDS),
                              description="maniskill2 (SimplerEnv) or maniskill3 (WidowX tasks only)."),
        DeclareLaunchArgument("rotation", default_value="rotvec", choices=list(ROTATION_FORMATS),
                              description="What the checkpoint's rotation outputs are (euler: raw OXE actions)."),
        DeclareLaunchArgument("runtime", default_value="eager", choices=list(RUNTIMES),
                              description="Policy inference runtime (onnx: a checkpoint written by robovlms-export)."),
        DeclareLaunchArgument("record", default_value="false", choices=list(BOOLEAN_CHOICES),
                              description="Also start the trial recorder."),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])


def _nodes(context):
    value = {name: LaunchConfiguration(name).perform(context)
             for name in ("checkpoint", "robot", "backend", "rotation", "runtime")}
    problem = checkpoint_problem(value["checkpoint"])
    if problem:
        raise RuntimeError(f"simpler.launch.py: {problem}")
    config_dir = PathJoinSubstitution([FindPackageShare("robovlms_bringup"), "config"])
    policy = {"checkpoint": value["checkpoint"], "runtime": value["runtime"]}
    return [
        # No `name`: it would rename both nodes of the process; the YAMLs address each node by its own name.
        Node(package="robovlms_simpler", executable="simpler_cell", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "kinova_driver.yaml"]),
                         PathJoinSubstitution([config_dir, "simpler.yaml"]),
                         string_parameters_file("simpler_bridge", {k: value[k] for k in ("robot", "backend",
                                                                                         "rotation")})]),
        Node(package="robovlms_policy", executable="policy_node", name="policy_node", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "policy_node.yaml"]),
                         PathJoinSubstitution([config_dir, "simpler.yaml"]),
                         string_parameters_file("policy_node", policy),
                         {"control_rate_hz": ROBOTS[value["robot"]].control_freq}]),
        Node(package="robovlms_policy", executable="trial_recorder", name="trial_recorder", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "trial_recorder.yaml"])],
             condition=IfCondition(LaunchConfiguration("record"))),
    ]
