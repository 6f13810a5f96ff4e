"""Kinova Gen3 + Robotiq 2F-85 driver and camera nodes for the RoboVLMs ROS 2 suite."""
