"""robovlms-export-lerobot: recorded trials / demonstrations -> a LeRobotDataset v3.0 directory (Parquet + MP4 +
meta/), so the same data trains LeRobot policies too.

    robovlms-export-lerobot runs/<run> [more trial or run dirs, episode stores] --out datasets/kinova-demos

Episodes are the training reader's (every command paired with the newest frame of each camera before it and the
robot state), one LeRobot frame per command at the control rate (``--fps``, 10 by default):
  action               float32 (7): dx, dy, dz [m], drx, dry, drz [rad] per control period (base_link), gripper
                       closure (0 open .. 1 closed), as EndEffectorCommand carries them
  observation.state    float32 (10): TCP position, the first two rotation-matrix columns, gripper closure
                       (robovlms' ee_pose_gripper layout), when every episode recorded it
  observation.images.<camera>  video (H, W, 3), one MP4 per camera (all episodes concatenated), h264 yuv420p
  timestamp, frame_index, episode_index, index, task_index
The task of an episode is its instruction. meta/ holds info.json (schema, fps, path templates), stats.json
(min / max / mean / std / count per feature), tasks.parquet and the episode table (lengths, data and video
offsets, per-episode stats), laid out as LeRobot's v3.0 reader expects.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .episodes import DEFAULT_CAMERA_TOPICS, Episode, EpisodeError
from .oxe.lerobot_reader import ACTION_NAMES, CODEBASE_VERSION, STATE_KEY, STATE_NAMES
from .sources import read_sources

CHUNK_FILE = "chunk-000/file-000"
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def _stats(values: np.ndarray) -> dict:
    """LeRobot's per-feature statistics over the first axis (frames)."""
    return {"min": values.min(axis=0).tolist(), "max": values.max(axis=0).tolist(),
            "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist(), "count": [len(values)]}


def _image_stats(frames: np.ndarray) -> dict:
    """Per-channel statistics of (T, H, W, 3) uint8 frames in [0, 1], shaped (3, 1, 1) as LeRobot keeps them."""
    pixels = frames.reshape(-1, 3).astype(np.float64) / 255.0
    stats = _stats(pixels)
    return {key: [[[v]] for v in value] if key != "count" else [len(frames)] for key, value in stats.items()}


def _tasks_table(tasks: list[str]):
    """meta/tasks.parquet as LeRobot writes it from pandas: a task_index column indexed by the task string (the
    pandas metadata marks "task" as the index, so pandas.read_parquet restores it without pandas here)."""
    import pyarrow as pa

    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "pandas_version": "2.2.3", "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
         "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}]}
    table = pa.table({"task_index": pa.array(range(len(tasks)), type=pa.int64()), "task": pa.array(tasks)})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _write_video(path: Path, episodes: Sequence[np.ndarray], fps: int, codec: str) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = episodes[0].shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frames in episodes:
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def export(episodes: Sequence[Episode], out: Path, fps: int = 10, robot_type: str = "kinova_gen3_robotiq_2f85",
           codec: str = "libx264") -> dict:
    """Write the dataset; returns its info.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not episodes:
        raise EpisodeError("no episodes to export")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new directory")
    cameras = sorted(set.intersection(*(set(e.frames) for e in episodes)))
    for camera in cameras:
        sizes = {np.asarray(e.frames[camera][0]).shape for e in episodes}
        if len(sizes) != 1 or any(s % 2 for s in next(iter(sizes))[:2]):
            raise ValueError(f"camera {camera}: frame sizes {sorted(sizes)} differ between episodes or are odd "
                             "(one video per camera needs one even size)")
    with_state = all(e.proprio is not None for e in episodes)
    tasks = list(dict.fromkeys(e.instruction for e in episodes))
    frames = {c: [np.asarray(e.frames[c]) for e in episodes] for c in cameras}
    columns: dict[str, list] = {"action": [], STATE_KEY: [], **{k: [] for k in INDEX_COLUMNS}}
    episode_rows = []
    start = 0
    for index, episode in enumerate(episodes):
        n = len(episode)
        actions = episode.actions.astype(np.float32)
        columns["action"] += list(actions)
        if with_state:
            columns[STATE_KEY] += list(episode.proprio.astype(np.float32))
        columns["timestamp"] += list((np.arange(n) / fps).astype(np.float32))
        columns["frame_index"] += list(range(n))
        columns["episode_index"] += [index] * n
        columns["index"] += list(range(start, start + n))
        columns["task_index"] += [tasks.index(episode.instruction)] * n
        row = {"episode_index": index, "tasks": [episode.instruction], "length": n,
               "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": start + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for camera in cameras:
            key = f"observation.images.{camera}"
            row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": start / fps, f"videos/{key}/to_timestamp": (start + n) / fps})
            row.update({f"stats/{key}/{k}": v for k, v in _image_stats(frames[camera][index]).items()})
        row.update({f"stats/action/{k}": v for k, v in _stats(actions).items()})
        episode_rows.append(row)
        start += n
    if not with_state:
        del columns[STATE_KEY]

    out.mkdir(parents=True, exist_ok=True)
    features = {"action": {"dtype": "float32", "shape": [7], "names": ACTION_NAMES}}
    if with_state:
        features[STATE_KEY] = {"dtype": "float32", "shape": [10], "names": STATE_NAMES}
    for camera in cameras:
        height, width = frames[camera][0].shape[1:3]
        features[f"observation.images.{camera}"] = {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": "h264" if codec == "libx264"
                     else codec, "video.pix_fmt": "yuv420p", "is_depth_map": False, "video.fps": fps,
                     "video.channels": 3, "has_audio": False}}
        _write_video(out / "videos" / f"observation.images.{camera}" / f"{CHUNK_FILE}.mp4", frames[camera], fps, codec)
    features.update({"timestamp": {"dtype": "float32", "shape": [1], "names": None},
                     **{k: {"dtype": "int64", "shape": [1], "names": None} for k in INDEX_COLUMNS[1:]}})

    table = {"action": pa.array([a.tolist() for a in columns.pop("action")], type=pa.list_(pa.float32()))}
    if with_state:
        table[STATE_KEY] = pa.array([s.tolist() for s in columns.pop(STATE_KEY)],
                                              type=pa.list_(pa.float32()))
    table["timestamp"] = pa.array(columns.pop("timestamp"), type=pa.float32())
    table.update({k: pa.array(v, type=pa.int64()) for k, v in columns.items()})
    (out / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(table), out / "data" / f"{CHUNK_FILE}.parquet")
    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), out / "meta" / "episodes" / f"{CHUNK_FILE}.parquet")
    pq.write_table(_tasks_table(tasks), out / "meta" / "tasks.parquet")

    stats = {"action": _stats(np.stack([a for e in episodes for a in e.actions]).astype(np.float32))}
    if with_state:
        stats[STATE_KEY] = _stats(np.concatenate([e.proprio for e in episodes]).astype(np.float32))
    for camera in cameras:
        stats[f"observation.images.{camera}"] = _image_stats(np.concatenate(frames[camera]))
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "fps": fps, "features": features,
            "total_episodes": len(episodes), "total_frames": start, "total_tasks": len(tasks), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "splits": {"train": f"0:{len(episodes)}"}}
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-export-lerobot", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="trial / run directories (bags) or episode stores")
    parser.add_argument("--out", required=True, type=Path, help="new dataset directory")
    parser.add_argument("--fps", type=int, default=10, help="control rate the commands were sent at")
    parser.add_argument("--include-failures", action="store_true", help="also failed / unlabelled trials")
    parser.add_argument("--robot-type", default="kinova_gen3_robotiq_2f85")
    parser.add_argument("--vcodec", default="libx264", help="libx264 (h264) or libsvtav1 (LeRobot's default AV1)")
    args = parser.parse_args(argv)
    try:
        episodes = read_sources(args.data, args.include_failures, DEFAULT_CAMERA_TOPICS)
        info = export(episodes, args.out, args.fps, args.robot_type, args.vcodec)
    except (EpisodeError, ValueError, OSError) as err:
        print(f"robovlms-export-lerobot: error: {err}", file=sys.stderr)
        if args.out.exists() and not any(args.out.rglob("*.parquet")):
            shutil.rmtree(args.out, ignore_errors=True)
        return 1
    print(f"wrote {info['total_episodes']} episodes, {info['total_frames']} frames, {info['total_tasks']} tasks "
          f"(LeRobotDataset {CODEBASE_VERSION}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
