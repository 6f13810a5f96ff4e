"""Evaluation trials: start/stop/label services and rosbag2 (MCAP) recording of each trial."""
