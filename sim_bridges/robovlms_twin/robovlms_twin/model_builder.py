"""MJCF of the twin cell, generated in code from primitive shapes.

The Kinova Gen3 7-DoF chain uses Kinova's published kinematic constants (the joint origins of the
ros2_kortex ``gen3`` 7-DoF description); links are capsules, not meshes, so offscreen rendering
stays in the hundreds of frames per second on a CPU. World frame = ``base_link``: x forward, y to
the robot's left, z up, table top at z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robovlms_io.names import ARM_JOINTS
# Kinova's joint limits (rad); joints 1, 3, 5, 7 are continuous.
ARM_JOINT_LIMITS = {"joint_2": 2.41, "joint_4": 2.66, "joint_6": 2.23}
FINGER_TRAVEL = 0.0425  # m per finger: 85 mm stroke of the 2F-85 split over two fingers
TCP_OFFSET = 0.13  # m from end_effector_link along the tool axis to the point between the fingertips
BLOCK_HALF = 0.02
BLOCK_COLORS = {"red": (0.85, 0.10, 0.10), "blue": (0.10, 0.25, 0.85), "green": (0.10, 0.70, 0.20)}
DISTRACTOR_COLORS = ((0.90, 0.80, 0.10), (0.55, 0.20, 0.70))
DISTRACTOR_PARK = np.array([2.2, -1.8, -0.74])  # on the floor, outside both cameras' view
LIGHT_OFF_RGBA = (0.25, 0.22, 0.15, 1.0)
LIGHT_ON_RGBA = (1.0, 0.9, 0.2, 1.0)

# (child position in parent frame, child quaternion w x y z) of each arm link, from base_link.
_HALF = float(np.sqrt(0.5))
_ARM_CHAIN = (
    ((0.0, 0.0, 0.15643), (0.0, 1.0, 0.0, 0.0)),
    ((0.0, 0.005375, -0.12838), (_HALF, _HALF, 0.0, 0.0)),
    ((0.0, -0.21038, -0.006375), (_HALF, -_HALF, 0.0, 0.0)),
    ((0.0, 0.006375, -0.21038), (_HALF, _HALF, 0.0, 0.0)),
    ((0.0, -0.20843, -0.006375), (_HALF, -_HALF, 0.0, 0.0)),
    ((0.0, 0.00017505, -0.10593), (_HALF, _HALF, 0.0, 0.0)),
    ((0.0, -0.10593, -0.00017505), (_HALF, -_HALF, 0.0, 0.0)),
)
_BRACELET_TO_EE = ((0.0, 0.0, -0.061525), (0.0, 1.0, 0.0, 0.0))
_LINK_RADII = (0.046, 0.046, 0.044, 0.042, 0.036, 0.036, 0.036)
# Position-servo gains per joint (N m / rad): big actuators on 1-4, small on 5-7.
_ARM_KP = (3000, 3000, 2500, 2500, 1200, 1200, 1200)
_ARM_FORCE = (80, 80, 60, 60, 30, 30, 30)


@dataclass
class CameraPose:
    """A fixed camera looking from ``position`` at ``target`` (world frame)."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy_deg: float


# Azure Kinect colour camera (16:9 modes have a ~59 deg vertical FOV) on a tripod in front-right of the table.
STATIC_CAMERA = CameraPose(position=(1.20, -0.55, 0.80), target=(0.38, 0.0, 0.10), fovy_deg=59.0)
# Wrist RealSense (D405-class colour: ~58 deg vertical FOV), beside the gripper coupling, looking along the tool.
WRIST_CAMERA_FOVY_DEG = 58.0


def _vec(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def look_at_xyaxes(position, target, up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Camera x and y axes (MuJoCo convention: looks along -z, y up) for a camera aimed at ``target``."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    x_axis = np.cross(forward, up)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(-forward, x_axis)
    return x_axis, y_axis


def _arm_xml() -> str:
    """Nested bodies of the arm, the gripper and the wrist camera."""
    opened = []
    for index, (pos, quat) in enumerate(_ARM_CHAIN):
        name = "shoulder half_arm_1 half_arm_2 forearm spherical_wrist_1 spherical_wrist_2 bracelet".split()[index]
        joint = ARM_JOINTS[index]
        limit = ARM_JOINT_LIMITS.get(joint)
        joint_range = f'limited="true" range="{-limit} {limit}"' if limit else 'limited="false"'
        child = _ARM_CHAIN[index + 1][0] if index + 1 < len(_ARM_CHAIN) else _BRACELET_TO_EE[0]
        opened.append(
            f'<body name="{name}_link" pos="{_vec(pos)}" quat="{_vec(quat)}" gravcomp="1">'
            f'<joint name="{joint}" axis="0 0 1" {joint_range}/>'
            f'<geom class="arm" type="capsule" size="{_LINK_RADII[index]}" fromto="0 0 0 {_vec(child)}"/>'
        )
    ee_pos, ee_quat = _BRACELET_TO_EE
    opened.append(f'<body name="end_effector_link" pos="{_vec(ee_pos)}" quat="{_vec(ee_quat)}" gravcomp="1">')
    opened.append(_gripper_xml())
    return "".join(opened) + "</body>" * (len(_ARM_CHAIN) + 1)


def _gripper_xml() -> str:
    """A 2F-85-like parallel gripper in the end_effector_link frame (z out of the tool, fingers close along y)."""
    finger_half = (0.011, 0.007, 0.032)
    fingers = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        fingers.append(
            f'<body name="{side}_finger" pos="0 {sign * (FINGER_TRAVEL + finger_half[1]):.6g} 0.08" gravcomp="1">'
            f'<joint name="{side}_finger_joint" type="slide" axis="0 {-sign:g} 0" range="0 {FINGER_TRAVEL}"'
            ' damping="2" armature="0.01"/>'
            f'<geom class="pad" type="box" size="{_vec(finger_half)}" pos="0 0 {finger_half[2]}"/>'
            "</body>"
        )
    return (
        '<geom class="gripper" type="cylinder" size="0.038 0.01" pos="0 0 0.01"/>'
        '<geom class="gripper" type="box" size="0.03 0.05 0.03" pos="0 0 0.05"/>'
        + "".join(fingers)
        + f'<site name="tcp" pos="0 0 {TCP_OFFSET}" size="0.004" rgba="1 0 0 0.5" group="4"/>'
        + f'<camera name="wrist" pos="0.06 0 0" xyaxes="0 1 0 1 0 0" fovy="{WRIST_CAMERA_FOVY_DEG}"/>'
    )


def _objects_xml() -> str:
    blocks = "".join(
        f'<body name="{name}_block" pos="0.5 {0.1 * i - 0.1:.3f} {BLOCK_HALF}"><freejoint name="{name}_block"/>'
        f'<geom name="{name}_block" class="object" type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}"'
        f' mass="0.05" rgba="{_vec(rgb)} 1"/></body>'
        for i, (name, rgb) in enumerate(BLOCK_COLORS.items())
    )
    distractors = "".join(
        f'<body name="distractor_{i}" pos="{_vec(DISTRACTOR_PARK + [0.1 * i, 0, 0])}">'
        f'<freejoint name="distractor_{i}"/><geom name="distractor_{i}" class="object" type="box"'
        f' size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" mass="0.05" rgba="{_vec(rgb)} 1"/></body>'
        for i, rgb in enumerate(DISTRACTOR_COLORS)
    )
    cabinet = (
        '<body name="cabinet" pos="0.52 0.28 0">'
        '<geom name="cabinet_bottom" class="furniture" type="box" size="0.1 0.1 0.005" pos="0.1 0 0.005"/>'
        '<geom name="cabinet_top" class="furniture" type="box" size="0.1 0.1 0.005" pos="0.1 0 0.095"/>'
        '<geom name="cabinet_left" class="furniture" type="box" size="0.1 0.005 0.045" pos="0.1 0.095 0.05"/>'
        '<geom name="cabinet_right" class="furniture" type="box" size="0.1 0.005 0.045" pos="0.1 -0.095 0.05"/>'
        '<geom name="cabinet_back" class="furniture" type="box" size="0.005 0.1 0.045" pos="0.195 0 0.05"/>'
        '<body name="drawer">'
        '<joint name="drawer_slide" type="slide" axis="-1 0 0" range="0 0.16" damping="4" frictionloss="0.3"/>'
        '<geom name="drawer_front" class="drawer" type="box" size="0.01 0.1 0.0475" pos="-0.01 0 0.0525"/>'
        '<geom name="drawer_floor" class="drawer" type="box" size="0.085 0.085 0.004" pos="0.09 0 0.015"/>'
        '<geom class="drawer" type="box" size="0.085 0.004 0.03" pos="0.09 0.085 0.045"/>'
        '<geom class="drawer" type="box" size="0.085 0.004 0.03" pos="0.09 -0.085 0.045"/>'
        '<geom class="drawer" type="box" size="0.004 0.085 0.03" pos="0.175 0 0.045"/>'
        '<geom name="drawer_handle" class="handle" type="cylinder" size="0.012 0.025" pos="-0.01 0 0.125"/>'
        "</body></body>"
    )
    button = (
        '<body name="button_base" pos="0.60 -0.30 0">'
        '<geom name="button_base" class="furniture" type="box" size="0.035 0.035 0.015" pos="0 0 0.015"/>'
        f'<geom name="button_light" type="cylinder" size="0.014 0.008" pos="0 0.055 0.008" contype="0"'
        f' conaffinity="0" rgba="{_vec(LIGHT_OFF_RGBA)}"/>'
        '<body name="button" pos="0 0 0.03">'
        '<joint name="button_press" type="slide" axis="0 0 -1" range="0 0.015" stiffness="400" damping="2"/>'
        '<geom name="button_cap" class="handle" type="cylinder" size="0.022 0.01" pos="0 0 0.01" mass="0.02"/>'
        "</body></body>"
    )
    slider = (
        '<body name="slider_rail" pos="0.42 -0.28 0">'
        '<geom name="slider_rail" class="furniture" type="box" size="0.015 0.13 0.008" pos="0 0 0.008"/>'
        '<body name="slider" pos="0 0 0.016">'
        '<joint name="slider_slide" type="slide" axis="0 1 0" range="-0.1 0.1" damping="5" frictionloss="1"/>'
        '<geom name="slider_knob" class="handle" type="box" size="0.025 0.015 0.02" pos="0 0 0.02" mass="0.05"/>'
        "</body></body>"
    )
    return blocks + distractors + cabinet + button + slider


def build_mjcf(offscreen_size: int = 640, timestep: float = 0.002) -> str:
    """The whole cell as an MJCF string; ``offscreen_size`` bounds the largest rendered image side."""
    cam_x, cam_y = look_at_xyaxes(STATIC_CAMERA.position, STATIC_CAMERA.target)
    actuators = "".join(
        f'<position name="{joint}" joint="{joint}" kp="{kp}" kv="{kp / 20:g}" forcerange="{-f} {f}"/>'
        for joint, kp, f in zip(ARM_JOINTS, _ARM_KP, _ARM_FORCE)
    )
    return f"""<mujoco model="robovlms_kinova_twin">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{offscreen_size}" offheight="{offscreen_size}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"/>
  </visual>
  <default>
    <joint armature="0.05" damping="1"/>
    <geom contype="1" conaffinity="3" friction="1 0.01 0.001" solref="0.01 1"/>
    <default class="arm"><geom contype="2" conaffinity="0" rgba="0.82 0.83 0.85 1" mass="0.8"/></default>
    <default class="gripper"><geom contype="2" conaffinity="0" rgba="0.15 0.15 0.16 1" mass="0.3"/></default>
    <default class="pad">
      <geom contype="2" conaffinity="0" rgba="0.25 0.25 0.27 1" mass="0.04" friction="1.5 0.02 0.002" condim="4"/>
    </default>
    <default class="object"><geom condim="4"/></default>
    <default class="furniture"><geom rgba="0.55 0.40 0.28 1" mass="1"/></default>
    <default class="drawer"><geom rgba="0.72 0.58 0.42 1" mass="0.1"/></default>
    <default class="handle"><geom rgba="0.75 0.75 0.78 1" mass="0.03"/></default>
  </default>
  <worldbody>
    <light name="sun" directional="true" pos="0 0 2" dir="0.2 0.3 -1" diffuse="0.5 0.5 0.5" castshadow="false"/>
    <geom name="floor" type="plane" size="4 4 0.1" pos="0 0 -0.76" rgba="0.3 0.3 0.32 1"/>
    <geom name="table" type="box" size="0.55 0.7 0.02" pos="0.3 0 -0.02" rgba="0.62 0.62 0.58 1"/>
    <geom name="base" class="arm" type="cylinder" size="0.05 0.078" pos="0 0 0.078"/>
    <camera name="static" pos="{_vec(STATIC_CAMERA.position)}" xyaxes="{_vec(cam_x)} {_vec(cam_y)}"
            fovy="{STATIC_CAMERA.fovy_deg}"/>
    {_arm_xml()}
    {_objects_xml()}
  </worldbody>
  <contact>
    <exclude body1="cabinet" body2="drawer"/>
    <exclude body1="button_base" body2="button"/>
    <exclude body1="slider_rail" body2="slider"/>
  </contact>
  <equality>
    <joint joint1="right_finger_joint" joint2="left_finger_joint" solref="0.005 1"/>
  </equality>
  <actuator>
    {actuators}
    <position name="gripper" joint="left_finger_joint" kp="1500" kv="30" forcerange="-25 25"
              ctrlrange="0 {FINGER_TRAVEL}"/>
  </actuator>
</mujoco>"""
