"""VLA core: vision-language backbones, VLA structures, action codec and checkpoints. Imports no ROS code."""
