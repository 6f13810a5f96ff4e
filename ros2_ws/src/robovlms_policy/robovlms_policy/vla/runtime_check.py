"""A runtime against eager fp32 on the same inputs: the same instruction and the same sequence of random frames
(and robot states), each policy keeping its own history, compared chunk by chunk."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .policy import VLAPolicy


@dataclass
class RuntimeDifference:
    runtime: str
    steps: int
    max_arm_error: float  # m or rad per control period, over every chunk position
    max_arm_error_normalised: float  # in the codec's [-1, 1] units
    gripper_agreement: float  # fraction of chunk positions with the closure on the same side of 0.5


def random_observations(policy: VLAPolicy, steps: int, seed: int = 0) -> list[tuple[dict, np.ndarray | None]]:
    rng = np.random.default_rng(seed)
    observations = []
    for _ in range(steps):
        images = {name: rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for name in policy.camera_names}
        proprio = rng.normal(size=policy.config.proprio_dim) if policy.config.proprio_dim else None
        observations.append((images, proprio))
    return observations


def compare(reference: VLAPolicy, candidate: VLAPolicy, instruction: str = "open the drawer", steps: int = 0,
            seed: int = 0) -> RuntimeDifference:
    """Run both policies over ``steps`` observations (default: one more than the window, so the history fills)."""
    steps = steps or reference.window + 1
    reference.reset(instruction)
    candidate.reset(instruction)
    arm_error = normalised_error = 0.0
    agree, positions = 0, 0
    # The codec's [-1, 1] range in command units (dataset units x the embodiment's scale).
    span = (reference.codec.stats.high - reference.codec.stats.low) * np.asarray(reference.codec.embodiment.arm_scale)
    for images, proprio in random_observations(reference, steps, seed):
        ref, got = reference.step(images, proprio), candidate.step(images, proprio)
        difference = np.abs(ref.arm - got.arm)
        arm_error = max(arm_error, float(difference.max()))
        normalised_error = max(normalised_error, float((2 * difference / span).max()))
        agree += int(((ref.gripper > 0.5) == (got.gripper > 0.5)).sum())
        positions += ref.gripper.size
    return RuntimeDifference(candidate.runtime, steps, arm_error, normalised_error, agree / positions)
