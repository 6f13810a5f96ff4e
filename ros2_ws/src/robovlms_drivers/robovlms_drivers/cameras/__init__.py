"""Camera nodes publishing Image + CameraInfo on the official ROS drivers' default topics."""
