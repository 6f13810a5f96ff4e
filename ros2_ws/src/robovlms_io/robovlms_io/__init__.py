"""The shared ROS I/O layer of the RoboVLMs suite: each fact that crosses a package boundary, written once.

Modules: ``names`` (topics, frames, joints, cameras), ``qos``, ``images`` (Image / CameraInfo), ``commands``
(EndEffectorCommand), ``rotations`` (numpy only), ``instructions``, ``params`` (parameter declarations) and
``spin`` (the executables' main helper). Nothing here imports torch or a simulator.
"""
