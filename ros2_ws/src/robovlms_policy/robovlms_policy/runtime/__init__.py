"""The policy node's decisions without ROS: chunk strategies and PolicyCore."""
