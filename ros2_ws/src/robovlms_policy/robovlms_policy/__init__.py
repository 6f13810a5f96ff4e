"""RoboVLMs policy package: the VLA core (``vla``, no ROS imports) and the ROS 2 policy node (``node``)."""
