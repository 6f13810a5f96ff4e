"""robovlms-export-lerobot on real recordings (two demo runs of the scripted expert): the LeRobotDataset v3.0
directory read back with pyarrow and PyAV against LeRobot's documented schema (the `lerobot` package needs
torchvision, which this project never installs)."""
from __future__ import annotations

import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from robovlms_training.episodes import load_episodes
from robovlms_training.lerobot_export import main as export_lerobot
from test_training_episodes import demo_run, record_demo_run  # noqa: F401 (demo_run: a module fixture)

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def exported(demo_run, tmp_path_factory):
    second = record_demo_run(tmp_path_factory.mktemp("second_run"))
    out = tmp_path_factory.mktemp("lerobot") / "dataset"
    assert export_lerobot([str(demo_run), str(second), "--out", str(out)]) == 0
    return out, load_episodes([demo_run, second])


def test_info_tasks_and_episode_table(exported):
    out, episodes = exported
    info = json.loads((out / "meta" / "info.json").read_text())
    lengths = [len(e) for e in episodes]
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, sum(lengths), 1)
    assert info["features"]["action"]["shape"] == [7] and info["features"]["observation.state"]["shape"] == [10]
    assert info["features"]["observation.images.static"]["dtype"] == "video"
    assert info["features"]["observation.images.wrist"]["shape"] == [64, 64, 3]
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.column("task").to_pylist() == [episodes[0].instruction] and tasks.column("task_index").to_pylist() == [0]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    table = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [r["length"] for r in table] == lengths
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in table] == [(0, lengths[0]), (lengths[0], sum(lengths))]
    assert table[1]["videos/observation.images.static/from_timestamp"] == pytest.approx(lengths[0] / 10)
    assert table[0]["tasks"] == [episodes[0].instruction]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats["action"]["count"] == [sum(lengths)] and len(stats["observation.images.static"]["mean"]) == 3


def test_frames_rows_and_videos_are_the_recorded_data(exported):
    out, episodes = exported
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert set(data.column_names) == {"action", "observation.state", "timestamp", "frame_index", "episode_index",
                                      "index", "task_index"}
    actions = np.array(data.column("action").to_pylist())
    np.testing.assert_allclose(actions, np.concatenate([e.actions for e in episodes]), atol=1e-6)
    np.testing.assert_allclose(np.array(data.column("observation.state").to_pylist()),
                               np.concatenate([e.proprio for e in episodes]), atol=1e-6)
    assert data.column("index").to_pylist() == list(range(len(actions)))
    assert data.column("frame_index").to_pylist()[len(episodes[0])] == 0
    for camera in ("static", "wrist"):
        with av.open(str(out / "videos" / f"observation.images.{camera}" / "chunk-000" / "file-000.mp4")) as video:
            frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
        recorded = np.concatenate([e.frames[camera] for e in episodes])
        assert len(frames) == len(recorded)
        error = np.abs(np.stack(frames).astype(float) - recorded.astype(float)).mean()
        assert error < 8.0, f"{camera}: mean abs pixel error {error:.1f} after h264"


def test_refusals(exported, tmp_path, capsys):
    out, episodes = exported
    assert export_lerobot([str(tmp_path), "--out", str(tmp_path / "new")]) == 1
    assert "holds no trials" in capsys.readouterr().err and not (tmp_path / "new").exists()
    assert export_lerobot([str(episodes[0].trial_dir), "--out", str(out)]) == 1
    assert "exists and is not empty" in capsys.readouterr().err and (out / "meta" / "info.json").is_file()
