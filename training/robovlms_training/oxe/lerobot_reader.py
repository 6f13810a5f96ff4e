"""LeRobotDataset v3.0 directories (LeRobot's Open X-Embodiment ports, and this suite's
``robovlms-export-lerobot`` output) -> Episodes, with pyarrow and PyAV (the ``lerobot`` package needs
torchvision, which this project never installs).

Layout: ``meta/info.json`` (codebase_version, fps, features, path templates), ``meta/episodes/chunk-*/file-*.parquet``
(one row per episode: length, tasks, which data / video file holds it and, per camera, the from / to timestamps
of its frames in that video), ``meta/tasks.parquet``, ``data/chunk-*/file-*.parquet`` (one row per frame) and
``videos/<key>/chunk-*/file-*.mp4`` (many episodes per file). ``LeRobotConfig`` says which feature is the action,
which video keys are which cameras, and whose conventions the actions follow: the exporter writes the kinova
embodiment's command units (metres / radians per period, closure 0..1), so they pass through unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from robovlms_io.instructions import normalize_instruction
from robovlms_policy.vla.embodiments import ARM_DIMS, arm_to_command_units, get_embodiment, gripper_to_closure

from ..episodes import Episode
from .rlds import OXEDataError, read_json_object

CODEBASE_VERSION = "v3.0"
INFO = Path("meta") / "info.json"
IMAGE_PREFIX = "observation.images."
# What robovlms-export-lerobot writes; the reader recognises the suite's exports by these action names.
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "gripper_closure"]
STATE_KEY = "observation.state"
STATE_NAMES = ["x", "y", "z", "r11", "r21", "r31", "r12", "r22", "r32", "gripper_closure"]


@dataclass(frozen=True)
class LeRobotConfig:
    """How a LeRobot dataset's features become an Episode's."""

    action_key: str = "action"
    cameras: Mapping[str, str] | None = None  # video feature key -> camera; None: observation.images.<c> -> <c>
    embodiment: str = "kinova"
    proprio_key: str | None = None  # e.g. STATE_KEY of our exports (ee_pose_gripper layout)


def _read_info(root: Path) -> dict:
    return read_json_object(root / INFO)


def is_lerobot_dataset(path: str | Path) -> bool:
    """A LeRobotDataset v3 directory (meta/info.json with a v3 codebase_version)."""
    path = Path(path)
    if not (path / INFO).is_file():
        return False
    try:
        return str(_read_info(path).get("codebase_version", "")).startswith("v3")
    except OXEDataError:
        return False


class LeRobotSource:
    """A LeRobot v3 dataset's episodes, read lazily: ``source(part, parts)`` yields every ``parts``-th episode
    from ``part`` (each worker decodes only its episodes' video segments), ``source.actions()`` reads only the
    action column."""

    def __init__(self, root: str | Path, config: LeRobotConfig = LeRobotConfig()) -> None:
        import pyarrow.parquet as pq

        self.root, self.config = Path(root), config
        if not (self.root / INFO).is_file():
            raise OXEDataError(f"{self.root / INFO} is missing: not a LeRobotDataset directory")
        self.info = _read_info(self.root)
        version = self.info.get("codebase_version")
        if version != CODEBASE_VERSION:
            raise OXEDataError(f"{self.root / INFO}: codebase_version {version!r}, this reader reads "
                               f"{CODEBASE_VERSION}")
        features = self.info.get("features", {})
        self.fps = float(self.info.get("fps", 0)) or None
        if self.fps is None:
            raise OXEDataError(f"{self.root / INFO} has no fps")
        cameras = config.cameras or {k: k[len(IMAGE_PREFIX):] for k, f in features.items()
                                     if k.startswith(IMAGE_PREFIX) and f.get("dtype") == "video"}
        needed = [config.action_key, *cameras, *([config.proprio_key] if config.proprio_key else [])]
        missing = [k for k in needed if k not in features]
        if missing:
            raise OXEDataError(f"{self.root / INFO} has no feature(s) {missing}; features: {sorted(features)}")
        not_video = [k for k in cameras if features[k].get("dtype") != "video"]
        if not_video:
            raise OXEDataError(f"{self.root / INFO}: {not_video} are not video features (only videos are read)")
        self.cameras = dict(cameras)
        self.embodiment = config.embodiment
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise OXEDataError(f"{self.root / 'meta' / 'episodes'} holds no chunk-*/file-*.parquet episode table")
        rows = [row for f in files for row in pq.read_table(f).to_pylist()]
        self.episodes = sorted(rows, key=lambda r: r["episode_index"])
        self._check_columns(files[0])
        self._cached: tuple[Path, dict[str, np.ndarray]] | None = None

    def _check_columns(self, table_file: Path) -> None:
        needed = ["episode_index", "length", "data/chunk_index", "data/file_index"]
        for key in self.cameras:
            needed += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
        missing = [c for c in needed if c not in self.episodes[0]]
        if missing:
            raise OXEDataError(f"{table_file} has no column(s) {missing}; columns: {sorted(self.episodes[0])}")

    def __len__(self) -> int:
        return len(self.episodes)

    def __repr__(self) -> str:
        return f"LeRobotSource({str(self.root)!r})"

    def _data(self, row: dict, columns: list[str]) -> dict[str, np.ndarray]:
        """The episode's frames of the data file that holds it, in frame order (the last file read is kept:
        episodes of one file are read one after another)."""
        import pyarrow.parquet as pq

        path = self.root / self.info["data_path"].format(chunk_index=row["data/chunk_index"],
                                                          file_index=row["data/file_index"])
        if self._cached is None or self._cached[0] != path:
            try:
                table = pq.read_table(path, columns=sorted({"episode_index", "frame_index", *columns}))
            except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
                raise OXEDataError(f"{path} cannot be read: {err}") from err
            self._cached = path, {c: _column_array(table.column(c)) for c in table.column_names}
        data = self._cached[1]
        rows = np.flatnonzero(data["episode_index"] == row["episode_index"])
        rows = rows[np.argsort(data["frame_index"][rows], kind="stable")]
        if len(rows) != row["length"]:
            raise OXEDataError(f"{path}: episode {row['episode_index']} has {len(rows)} frames, the episode table "
                               f"says {row['length']}")
        return {c: data[c][rows] for c in columns}

    def _actions(self, raw: np.ndarray, where: str) -> np.ndarray:
        if raw.dtype == object:
            raise OXEDataError(f"{where}: {self.config.action_key!r} rows differ in length")
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != ARM_DIMS + 1:
            raise OXEDataError(f"{where}: {self.config.action_key!r} has shape {raw.shape}, expected (T, 7)")
        emb = get_embodiment(self.embodiment)
        closure = gripper_to_closure(emb, raw[:, ARM_DIMS])
        return np.concatenate([arm_to_command_units(emb, raw[:, :ARM_DIMS]), closure[:, None]], axis=1)

    def _instruction(self, row: dict) -> str:
        tasks = row.get("tasks") or []
        return normalize_instruction(tasks[0]) if tasks else ""

    def _frames(self, row: dict, key: str) -> np.ndarray:
        path = self.root / self.info["video_path"].format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                                           file_index=row[f"videos/{key}/file_index"])
        start, stop = row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"]
        return decode_segment(path, start, stop, row["length"], self.fps)

    def episode(self, row: dict) -> Episode:
        """One row of the episode table as an Episode."""
        index = int(row["episode_index"])
        columns = [self.config.action_key, *([self.config.proprio_key] if self.config.proprio_key else [])]
        data = self._data(row, columns)
        where = f"{self.root} episode {index}"
        actions = self._actions(data[self.config.action_key], where)
        proprio = data[self.config.proprio_key].astype(np.float64) if self.config.proprio_key else None
        instruction = self._instruction(row)
        info: dict[str, Any] = {"embodiment": self.embodiment, "dataset": self.root.name,
                                "seed": f"{self.root.name}/{index}", "episode_index": index}
        return Episode(trial_dir=self.root, instruction=instruction, task=instruction, success=True,
                       frames={camera: self._frames(row, key) for key, camera in self.cameras.items()},
                       actions=actions, proprio=proprio, info=info)

    def __call__(self, part: int = 0, parts: int = 1) -> Iterator[Episode]:
        for row in self.episodes[part::parts]:
            if row["length"] and self._instruction(row):
                yield self.episode(row)

    def actions(self) -> Iterator[np.ndarray]:
        """(T, 7) command-unit actions of every episode a pass would yield; no video is decoded."""
        for row in self.episodes:
            if row["length"] and self._instruction(row):
                raw = self._data(row, [self.config.action_key])[self.config.action_key]
                yield self._actions(raw, f"{self.root} episode {row['episode_index']}")


def _column_array(column: Any) -> np.ndarray:
    """A parquet column as numpy: scalars (N,), fixed-length vectors (N, D) without a Python list per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks()
    if pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        lengths = np.unique(pc.list_value_length(array).to_numpy(zero_copy_only=False))
        if len(lengths) > 1:
            return np.asarray(array.to_pylist(), dtype=object)  # ragged: the caller's shape check names it
        values = array.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(array), int(lengths[0]) if len(lengths) else 0)
    return array.to_numpy(zero_copy_only=False)


def decode_segment(path: Path, start: float, stop: float, count: int, fps: float) -> np.ndarray:
    """The ``count`` frames of ``path`` whose timestamps lie in [start, stop), as uint8 (count, H, W, 3)."""
    import av

    half = 0.5 / fps
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if start > half:
                container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                time = frame.time
                if time is None or time < start - half:
                    continue
                if time >= stop - half or len(frames) == count:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except (OSError, av.FFmpegError) as err:
        raise OXEDataError(f"{path} cannot be decoded: {err}") from err
    if len(frames) != count:
        raise OXEDataError(f"{path}: {len(frames)} frames between {start:.3f} s and {stop:.3f} s, expected {count}")
    return np.stack(frames)


def read_lerobot(root: str | Path, config: LeRobotConfig | None = None) -> list[Episode]:
    """Every episode of a LeRobot v3 dataset in memory (small datasets; stream large ones); by default read as
    one of this suite's exports (``suite_export_config``)."""
    return list(LeRobotSource(root, config or suite_export_config(root))())


def suite_export_config(root: str | Path) -> LeRobotConfig:
    """How to read a dataset robovlms-export-lerobot wrote (kinova command units, the robot state where
    recorded). Another robot's dataset is refused rather than read in the wrong units."""
    features = _read_info(Path(root)).get("features", {})
    if features.get("action", {}).get("names") != ACTION_NAMES:
        raise OXEDataError(f"{Path(root) / INFO}: not a robovlms-export-lerobot dataset (its action is not "
                           f"{ACTION_NAMES}); read another robot's LeRobot data with a LeRobotConfig naming its "
                           f"action key, cameras and embodiment (robovlms_training.oxe.lerobot_reader)")
    return LeRobotConfig(proprio_key=STATE_KEY if STATE_KEY in features else None)
