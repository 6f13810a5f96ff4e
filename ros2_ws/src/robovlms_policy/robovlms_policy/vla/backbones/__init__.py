"""Vision-language backbones behind the BaseRoboVLM contract."""
