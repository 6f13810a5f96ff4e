"""The suite's main job: evaluation episodes on the MuJoCo twin, end to end over real DDS."""
