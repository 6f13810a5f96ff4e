"""SimplerEnv through ROS 2: the bridge, the driver's simpler backend and the visual-matching protocol."""
