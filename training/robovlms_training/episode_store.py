"""A directory of recorded episodes in compact form (frames at the checkpoint's input size), for data sets too
large to keep as full-resolution rosbags. Written by the twin collector, read into the same ``Episode``
objects as the bag reader produces.

Layout: ``manifest.json`` ({"format": FORMAT, "version": 1, "episodes": [entry, ...]}; each entry has the
episode's file, task, seed, variation, instruction, success, steps and provenance) and one
``episodes/<index>.npz`` per episode holding ``frames_<camera>`` uint8 (T, S, S, 3), ``actions`` float64
(T, 7) and ``proprio`` float64 (T, 10).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .episodes import Episode, EpisodeError

FORMAT = "robovlms-episodes"
MANIFEST = "manifest.json"


class EpisodeStore:
    """Appends episodes to a store directory; the manifest is rewritten after every ``flush``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        (self.root / "episodes").mkdir(parents=True, exist_ok=True)
        manifest = self.root / MANIFEST
        self.entries: list[dict[str, Any]] = read_manifest(self.root) if manifest.is_file() else []

    def add(self, episode: Episode, **provenance: Any) -> dict[str, Any]:
        name = f"episodes/{len(self.entries):06d}.npz"
        arrays = {f"frames_{camera}": frames for camera, frames in episode.frames.items()}
        np.savez(self.root / name, actions=episode.actions, proprio=episode.proprio, **arrays)
        entry = {"file": name, "task": episode.task, "instruction": episode.instruction,
                 "success": episode.success, "steps": len(episode),
                 **{k: v for k, v in episode.info.items() if k not in ("task", "instruction")}, **provenance}
        self.entries.append(entry)
        return entry

    def flush(self) -> None:
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "version": 1, "episodes": self.entries}, indent=1) + "\n")
        tmp.replace(self.root / MANIFEST)


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    path = Path(root) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise EpisodeError(f"{path} cannot be read: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("episodes"), list):
        raise EpisodeError(f"{path} is not a {FORMAT} manifest")
    return data["episodes"]


def load_store(roots: Iterable[str | Path], include_failures: bool = True) -> list[Episode]:
    """Every episode of the given store directories (failed ones too unless ``include_failures`` is False:
    their steps are still expert-labelled)."""
    episodes = []
    for root in roots:
        root = Path(root)
        for entry in read_manifest(root):
            if not include_failures and not entry.get("success"):
                continue
            episodes.append(_load_entry(root, entry))
    if not episodes:
        raise EpisodeError(f"no episodes in {[str(r) for r in roots]}")
    return episodes


def _load_entry(root: Path, entry: dict[str, Any]) -> Episode:
    path = root / entry["file"]
    try:
        with np.load(path) as data:
            frames = {key[len("frames_"):]: data[key] for key in data.files if key.startswith("frames_")}
            actions, proprio = data["actions"], data["proprio"]
    except (OSError, KeyError, ValueError) as err:
        raise EpisodeError(f"{path} cannot be read: {err}") from err
    if len(actions) != entry["steps"] or any(len(f) != len(actions) for f in frames.values()):
        raise EpisodeError(f"{path}: frames, actions and the manifest disagree on the episode length")
    return Episode(trial_dir=path, instruction=entry["instruction"], task=entry["task"],
                   success=bool(entry["success"]), frames=frames, actions=actions, proprio=proprio, info=entry)
