"""Open X-Embodiment datasets -> the suite's ``Episode``, and named mixtures of them.

Each spec names where a dataset keeps its camera image, instruction and action (flattened RLDS keys, as in
the builders' features.json) and the embodiment whose conventions its actions follow
(``robovlms_policy.vla.embodiments``). Episode actions are in command units, like a recording's: arm values
times the embodiment's ``arm_scale`` (metres / radians per step) and the gripper as a closure in [0, 1].
``WindowDataset`` converts them back to dataset units with ``command_to_dataset_units`` for the codec.

  bridge_dataset        Bridge V2 (WidowX, the rail-berkeley RLDS release Octo / OpenVLA train on):
                        image_0 -> "static", language_instruction, action 7-D = xyz delta, rpy delta,
                        gripper 1 open / 0 closed
  fractal20220817_data  RT-1 (Google Robot): image -> "static", natural_language_instruction, action =
                        world_vector (3) + rotation_delta (3) + gripper_closedness_action (1), a relative
                        command (+1 close, -1 open, 0 no change) made absolute here

Other magic-soup datasets (kuka, taco_play, jaco_play, berkeley_autolab_ur5) have public key names but
action units and gripper conventions no registered embodiment describes, so they have no spec yet.
Episodes without an instruction or without steps are skipped (Bridge V2 has unlabelled episodes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from robovlms_io.instructions import normalize_instruction
from robovlms_policy.vla.embodiments import ARM_DIMS, arm_to_command_units, get_embodiment, gripper_to_closure

from ..episodes import Episode
from .rlds import DATASET_INFO, OXEDataError, RLDSBuilder

# A relative gripper command counts as "close" / "open" beyond this magnitude; smaller values hold.
RELATIVE_DEADBAND = 0.1


@dataclass(frozen=True)
class DatasetSpec:
    """Where one OXE dataset keeps what an Episode needs."""

    name: str  # the builder's name in dataset_info.json
    embodiment: str  # an ``EMBODIMENTS`` key
    cameras: Mapping[str, str]  # camera name -> per-step image key
    instruction: str  # per-step text key
    actions: tuple[str, ...]  # per-step keys concatenated into 6 arm values + 1 gripper value (dataset units)
    relative_gripper: bool = False  # the gripper value is a change command, not a state

    def keys(self, images: bool = True) -> list[str]:
        """The record keys this spec reads; without images for action statistics."""
        return [*(self.cameras.values() if images else ()), self.instruction, *self.actions]


SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("bridge_dataset", "bridge", {"static": "steps/observation/image_0"},
                "steps/language_instruction", ("steps/action",)),
    DatasetSpec("fractal20220817_data", "google_robot", {"static": "steps/observation/image"},
                "steps/observation/natural_language_instruction",
                ("steps/action/world_vector", "steps/action/rotation_delta",
                 "steps/action/gripper_closedness_action"), relative_gripper=True),
)}

# Named mixtures: (dataset name, sampling weight: the share of episodes drawn from it). The subset keeps the
# magic soup's (Octo / OpenVLA) weights of its two datasets; there they also scale with dataset size.
MIXTURES: dict[str, list[tuple[str, float]]] = {
    "bridge": [("bridge_dataset", 1.0)],
    "rt_1": [("fractal20220817_data", 1.0)],
    "magic_soup_subset": [("fractal20220817_data", 0.54), ("bridge_dataset", 1.0)],
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; OXEDataError listing the known ones otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise OXEDataError(f"no OXE dataset spec for {name!r}; known datasets: {sorted(SPECS)}") from None


def get_mixture(name: str) -> list[tuple[DatasetSpec, float]]:
    """A named mixture's specs and weights; a single dataset name is a mixture of one."""
    if name in SPECS:
        return [(SPECS[name], 1.0)]
    if name not in MIXTURES:
        raise OXEDataError(f"unknown mixture {name!r}; mixtures: {sorted(MIXTURES)}, datasets: {sorted(SPECS)}")
    return [(get_spec(dataset), weight) for dataset, weight in MIXTURES[name]]


def mixture_sources(data_dir: str | Path, name: str) -> list[tuple[Path, float]]:
    """The builder directories of mixture ``name`` under a TFDS data directory (``DATA_DIR/<dataset>/<version>``,
    the highest version where there are several) with their weights."""
    from .rlds import is_rlds_builder

    found = []
    for spec, weight in get_mixture(name):
        root = Path(data_dir).expanduser() / spec.name
        versions = sorted((d for d in root.iterdir() if is_rlds_builder(d)),
                          key=lambda d: tuple(int(p) if p.isdigit() else 0 for p in d.name.split("."))) \
            if root.is_dir() else []
        if not versions:
            raise OXEDataError(f"mixture {name!r} needs {spec.name}: no builder directory {root}/<version>/")
        found.append((versions[-1], weight))
    return found


def relative_to_closure(commands: np.ndarray) -> np.ndarray:
    """Relative gripper commands (+1 close, -1 open, 0 no change) -> absolute closure: each step holds the
    last command beyond the dead band, and the gripper starts open."""
    closure = np.zeros(len(commands))
    state = 0.0
    for t, value in enumerate(np.asarray(commands, dtype=np.float64).reshape(-1)):
        if value > RELATIVE_DEADBAND:
            state = 1.0
        elif value < -RELATIVE_DEADBAND:
            state = 0.0
        closure[t] = state
    return closure


def command_actions(spec: DatasetSpec, steps: Mapping[str, Any], where: str) -> np.ndarray:
    """float64 (T, 7) actions in command units from a record's action features."""
    parts = [np.asarray(steps[key], dtype=np.float64) for key in spec.actions]
    parts = [p[:, None] if p.ndim == 1 else p for p in parts]
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise OXEDataError(f"{where}: action features {list(spec.actions)} have different step counts {lengths}")
    raw = np.concatenate(parts, axis=1)
    if raw.shape[1] != ARM_DIMS + 1:
        raise OXEDataError(f"{where}: {list(spec.actions)} give {raw.shape[1]} action values per step, "
                           f"expected {ARM_DIMS + 1} (6 arm + gripper)")
    if not np.isfinite(raw).all():
        raise OXEDataError(f"{where}: actions contain NaN or inf")
    embodiment = get_embodiment(spec.embodiment)
    gripper = raw[:, ARM_DIMS]
    closure = relative_to_closure(gripper) if spec.relative_gripper else gripper_to_closure(embodiment, gripper)
    return np.concatenate([arm_to_command_units(embodiment, raw[:, :ARM_DIMS]), closure[:, None]], axis=1)


def instruction_of(spec: DatasetSpec, steps: Mapping[str, Any]) -> str:
    """The episode's instruction: the first non-empty one of its steps ("" when none has one)."""
    return next((text for text in map(normalize_instruction, steps[spec.instruction]) if text), "")


def to_episode(spec: DatasetSpec, steps: Mapping[str, Any], source: Path, key: str) -> Episode | None:
    """One record -> an Episode (None when it has no steps or no instruction). ``key`` ("<dataset>/<shard>/
    <index>") becomes the seed that ``split_by_seed`` splits on."""
    actions = command_actions(spec, steps, key)
    instruction = instruction_of(spec, steps)
    if not len(actions) or not instruction:
        return None
    frames = {}
    for camera, image_key in spec.cameras.items():
        images = np.asarray(steps[image_key])
        if images.shape[0] != len(actions):
            raise OXEDataError(f"{key}: {image_key} has {images.shape[0]} frames for {len(actions)} actions")
        frames[camera] = images
    info = {"embodiment": spec.embodiment, "dataset": spec.name, "seed": key, "instruction": instruction}
    return Episode(trial_dir=source, instruction=instruction, task=spec.name, success=True, frames=frames,
                   actions=actions, info=info)


class RLDSSource:
    """A builder directory's episodes under its spec, read lazily shard by shard: ``source(part, parts)``
    yields the episodes of every ``parts``-th shard from ``part`` (so loader workers and ranks read disjoint
    files), ``source.actions()`` only the action features of every episode (no image is decoded)."""

    def __init__(self, directory: str | Path, spec: DatasetSpec | None = None, split: str = "train") -> None:
        self.builder = RLDSBuilder(directory)
        if spec is None:
            try:
                spec = get_spec(self.builder.name)
            except OXEDataError as err:
                raise OXEDataError(f"{self.builder.directory / DATASET_INFO}: {err}") from None
        self.spec, self.split = spec, split
        self.builder.check_keys(spec.keys())
        self.shards = self.builder.shards(split)
        self.embodiment = spec.embodiment

    def __repr__(self) -> str:
        return f"RLDSSource({str(self.builder.directory)!r}, {self.spec.name!r}, split={self.split!r})"

    def _records(self, shards: list[Path], images: bool) -> Iterator[tuple[Path, int, dict[str, Any]]]:
        for shard in shards:
            for index, steps in enumerate(self.builder.read_shard(shard, self.spec.keys(images))):
                yield shard, index, steps

    def __call__(self, part: int = 0, parts: int = 1) -> Iterator[Episode]:
        # Whole shard files per part where there are enough of them; otherwise every part reads all files and
        # keeps every parts-th record, so no part is left empty (an empty part would end its loader early).
        by_file = len(self.shards) >= parts
        records = self._records(self.shards[part::parts] if by_file else self.shards, images=True)
        for number, (shard, index, steps) in enumerate(records):
            if not by_file and number % parts != part:
                continue
            episode = to_episode(self.spec, steps, shard, f"{self.spec.name}/{shard.name}/{index}")
            if episode is not None:
                yield episode

    def actions(self) -> Iterator[np.ndarray]:
        """(T, 7) command-unit actions of every episode a pass would yield, images skipped."""
        for shard, index, steps in self._records(self.shards, images=False):
            actions = command_actions(self.spec, steps, f"{shard} record {index}")
            if len(actions) and instruction_of(self.spec, steps):
                yield actions


def read_rlds(directory: str | Path, split: str = "train") -> list[Episode]:
    """Every episode of a builder directory in memory (small datasets; stream large ones)."""
    return list(RLDSSource(directory, split=split)())
