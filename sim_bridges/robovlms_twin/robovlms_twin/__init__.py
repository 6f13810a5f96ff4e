"""MuJoCo digital twin of the Kinova Gen3 cell (sim core has no ROS imports) and its ROS 2 bridge."""
import ctypes.util
import os

# MuJoCo picks its offscreen GL backend when it is first imported: prefer EGL (hardware or Mesa),
# fall back to OSMesa, whichever this machine has. An explicit MUJOCO_GL always wins.
if "MUJOCO_GL" not in os.environ:
    if ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
