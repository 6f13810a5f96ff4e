"""ROS 2 side of the policy: image conversion, chunk execution and the policy node."""
