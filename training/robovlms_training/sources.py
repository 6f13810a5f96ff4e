"""Where training episodes come from: episode stores, CALVIN split directories, RLDS / TFDS builder directories
(Open X-Embodiment), LeRobotDataset v3 directories and trial / run directories of rosbags, told apart by what
they hold."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .calvin_dataset import is_calvin_split, load_calvin
from .episode_store import MANIFEST, load_store
from .episodes import DEFAULT_CAMERA_TOPICS, Episode, EpisodeError, load_episodes
from .oxe.lerobot_reader import is_lerobot_dataset, read_lerobot
from .oxe.mixtures import read_rlds
from .oxe.rlds import is_rlds_builder


def read_sources(paths: Sequence[str | Path], include_failures: bool, camera_topics: dict[str, str],
                 calvin_scenes: Sequence[str] | None = None, progress: bool = False) -> list[Episode]:
    """Episodes of every path: an episode store (has manifest.json), a CALVIN split directory, an RLDS builder
    directory (dataset_info.json + features.json; its name picks the dataset spec, the train split is read), a
    LeRobot v3 dataset (meta/info.json; read as this suite's exports: kinova command units), or trial / run
    directories of bags. RLDS and LeRobot episodes are read into memory: stream large ones
    (``oxe.streaming``)."""
    stores = [Path(p) for p in paths if (Path(p) / MANIFEST).is_file()]
    calvin = [Path(p) for p in paths if is_calvin_split(p)]
    rlds = [Path(p) for p in paths if is_rlds_builder(p)]
    lerobot = [Path(p) for p in paths if is_lerobot_dataset(p)]
    known = {*stores, *calvin, *rlds, *lerobot}
    bags = [p for p in paths if Path(p) not in known]
    for root in map(Path, bags):
        if is_calvin_split(root / "training"):
            raise EpisodeError(f"{root} is a CALVIN dataset root: train on {root / 'training'} and validate on "
                               f"{root / 'validation'} (--data, --val-data)")
        versions = sorted(d.name for d in root.iterdir() if is_rlds_builder(d)) if root.is_dir() else []
        if versions:
            raise EpisodeError(f"{root} is a TFDS dataset directory: give one of its version directories "
                               f"({', '.join(str(root / v) for v in versions)})")
    episodes = load_store(stores, include_failures=True) if stores else []
    if calvin:
        episodes += load_calvin(calvin, calvin_scenes, list(camera_topics), progress)
    for root in rlds:
        episodes += read_rlds(root)
    for root in lerobot:
        episodes += read_lerobot(root)
    if bags:
        episodes += load_episodes(bags, include_failures, camera_topics)
    return episodes


def default_topics(camera_names: Sequence[str]) -> dict[str, str]:
    """Bag topics of the checkpoint's cameras under the suite's default mapping (only those are read)."""
    unknown = [name for name in camera_names if name not in DEFAULT_CAMERA_TOPICS]
    if unknown:
        raise ValueError(f"checkpoint camera(s) {unknown} have no default topic; give --camera-topic NAME=TOPIC")
    return {name: DEFAULT_CAMERA_TOPICS[name] for name in camera_names}
