"""CALVIN through ROS 2: the bridge, the driver's calvin backend and the long-horizon protocol."""
