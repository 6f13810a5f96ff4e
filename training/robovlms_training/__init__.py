"""Offline training of RoboVLMs VLA policies: recorded trials -> windowed samples -> Lightning fine-tuning."""
