"""Open X-Embodiment readers: a TFDS builder directory in the real layout (dataset_info.json, features.json,
<name>-<split>.tfrecord-NNNNN-of-NNNNN shards of flattened tf.train.Examples) read back in command units, the
relative RT-1 gripper made absolute, clear errors, statistics that never decode an image, weighted shuffled
streaming sharded by worker and rank, and a LeRobot v3 round trip through the suite's own exporter."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tfrecord.writer import TFRecordWriter
from torch.utils.data import DataLoader

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_training.dataset import split_by_seed
from robovlms_training.episodes import Episode, EpisodeError
from robovlms_training.lerobot_export import export
from robovlms_training.oxe import streaming
from robovlms_training.oxe.lerobot_reader import LeRobotConfig, LeRobotSource, is_lerobot_dataset, read_lerobot
from robovlms_training.oxe.mixtures import RLDSSource, get_mixture, read_rlds, relative_to_closure
from robovlms_training.oxe.rlds import OXEDataError, RLDSBuilder
from robovlms_training.oxe.streaming import StreamingWindowDataset, dataset_action_statistics
from robovlms_training.sources import read_sources

SIZE, WINDOW, CHUNK, SEGMENT = 32, 3, 2, 4
TFDS = "tensorflow_datasets.core.features."
CODECS = {name: ActionCodec(ActionStatistics(np.full(6, -0.05), np.full(6, 0.05)), name)
          for name in ("bridge", "google_robot", "kinova")}


def _tensor(dims, dtype="float32", scalar=False):
    cls = "scalar.Scalar" if scalar else "tensor_feature.Tensor"
    return {"pythonClassName": TFDS + cls,
            "tensor": {"shape": {"dimensions": [str(d) for d in dims]} if dims else {}, "dtype": dtype,
                       "encoding": "none"}}


def _image():
    return {"pythonClassName": TFDS + "image_feature.Image",
            "image": {"shape": {"dimensions": [str(SIZE), str(SIZE), "3"]}, "dtype": "uint8", "encodingFormat": "jpeg"}}


def _dict(features):
    return {"pythonClassName": TFDS + "features_dict.FeaturesDict", "featuresDict": {"features": features}}


def _features(name: str) -> dict:
    """features.json as TFDS writes it for Bridge V2 / RT-1 (the keys this suite reads plus a few others)."""
    text = {"pythonClassName": TFDS + "text_feature.Text", "text": {}}
    if name == "fractal20220817_data":
        step = {"observation": _dict({"image": _image(), "natural_language_instruction": _tensor([], "string")}),
                "action": _dict({"world_vector": _tensor([3]), "rotation_delta": _tensor([3]),
                                 "gripper_closedness_action": _tensor([1]),
                                 "terminate_episode": _tensor([3], "int32")})}
    else:
        step = {"observation": _dict({"image_0": _image(), "state": _tensor([7])}), "action": _tensor([7]),
                "language_instruction": text}
    step["is_first"] = _tensor([], "bool", scalar=True)
    steps = {"pythonClassName": TFDS + "dataset_feature.Dataset", "sequence": {"feature": _dict(step), "length": "-1"}}
    return _dict({"steps": steps, "episode_metadata": _dict({"file_path": text})})


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _frames(length: int, seed: int) -> np.ndarray:
    """Smooth images (a brightness per step over a gradient), which JPEG and h264 keep close."""
    ramp = np.linspace(0, 120, SIZE)[None, :, None] + np.zeros((SIZE, SIZE, 3))
    return np.stack([(ramp + 12 * t + 40 * seed) % 256 for t in range(length)]).astype(np.uint8)


def write_builder(root: Path, name: str = "bridge_dataset", shards: int = 2, per_shard: int = 2,
                  broken_images: bool = False, info_name: str | None = None) -> list[dict]:
    """A builder directory of ``shards`` x ``per_shard`` episodes of 5-12 steps; returns what each holds."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = []
    for shard in range(shards):
        writer = TFRecordWriter(str(root / f"{name}-train.tfrecord-{shard:05d}-of-{shards:05d}"))
        for index in range(per_shard):
            n = int(rng.integers(5, 13))
            frames = _frames(n, len(written))
            images = [b"not an image"] * n if broken_images else [_jpeg(f) for f in frames]
            instruction = f"task {shard} {index}"
            arm = rng.uniform(-0.03, 0.03, (n, 6)).astype(np.float32)
            gripper = rng.choice([-1.0, 0.0, 1.0], n).astype(np.float32)
            datum = {"steps/is_first": ([1] + [0] * (n - 1), "int"), "episode_metadata/file_path": (b"raw", "byte")}
            if name == "fractal20220817_data":
                datum.update({"steps/observation/image": (images, "byte"),
                              "steps/observation/natural_language_instruction": ([instruction.encode()] * n, "byte"),
                              "steps/action/world_vector": (arm[:, :3].ravel(), "float"),
                              "steps/action/rotation_delta": (arm[:, 3:].ravel(), "float"),
                              "steps/action/gripper_closedness_action": (gripper, "float"),
                              "steps/action/terminate_episode": ([0] * 3 * n, "int")})
            else:
                gripper = (gripper > 0).astype(np.float32)  # Bridge: 1 open, 0 closed
                datum.update({"steps/observation/image_0": (images, "byte"),
                              "steps/observation/state": (np.zeros(7 * n), "float"),
                              "steps/language_instruction": ([instruction.encode()] * n, "byte"),
                              "steps/action": (np.c_[arm, gripper].ravel(), "float")})
            writer.write(datum)
            written.append({"instruction": instruction, "arm": arm, "gripper": gripper, "frames": frames,
                            "shard": shard, "index": index})
        writer.close()
    info = {"name": info_name or name, "version": "1.0.0", "fileFormat": "tfrecord",
            "moduleName": f"{name}.{name}_dataset_builder",
            "splits": [{"name": "train", "numBytes": "1000", "shardLengths": [str(per_shard)] * shards,
                        "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]}
    (root / "dataset_info.json").write_text(json.dumps(info, indent=2))
    (root / "features.json").write_text(json.dumps(_features(name), indent=2))
    return written


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds") / "bridge_dataset" / "1.0.0"
    return root, write_builder(root)


def test_bridge_episodes_in_command_units(bridge):
    root, written = bridge
    episodes = read_rlds(root)
    assert [e.instruction for e in episodes] == [w["instruction"] for w in written]
    for episode, w in zip(episodes, written):
        assert episode.actions.dtype == np.float64 and episode.actions.shape == (len(w["arm"]), 7)
        np.testing.assert_array_equal(episode.actions[:, :6], w["arm"])  # Bridge: metres / radians already
        np.testing.assert_array_equal(episode.actions[:, 6], 1.0 - w["gripper"])  # 1 open -> closure 0
        assert episode.frames["static"].shape == w["frames"].shape
        assert np.abs(episode.frames["static"].astype(float) - w["frames"]).mean() < 3.0  # JPEG
        shard = root / f"bridge_dataset-train.tfrecord-{w['shard']:05d}-of-00002"
        assert episode.trial_dir == shard
        assert episode.info == {"embodiment": "bridge", "dataset": "bridge_dataset", "instruction": w["instruction"],
                                "seed": f"bridge_dataset/{shard.name}/{w['index']}"}
    train, validation = split_by_seed(episodes, 0.5)
    assert len(train) + len(validation) == 4 and train
    assert len(read_sources([root], False, {"static": "unused"})) == 4


def test_fractal_relative_gripper_becomes_absolute(tmp_path):
    written = write_builder(tmp_path / "fractal", "fractal20220817_data")
    episodes = RLDSSource(tmp_path / "fractal")()
    for episode, w in zip(episodes, written):
        np.testing.assert_array_equal(episode.actions[:, :6], w["arm"])
        np.testing.assert_array_equal(episode.actions[:, 6], relative_to_closure(w["gripper"]))
        assert episode.info["embodiment"] == "google_robot"
    assert relative_to_closure(np.array([0, 0.05, 1, 0, 0, -1, 0, 0.9, -0.05])).tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1]
    assert [(s.name, w) for s, w in get_mixture("magic_soup_subset")] == [("fractal20220817_data", 0.54),
                                                                           ("bridge_dataset", 1.0)]


def test_errors_name_the_file_and_the_keys(tmp_path, bridge):
    with pytest.raises(OXEDataError, match="is not a directory"):
        RLDSBuilder(tmp_path / "nowhere")
    root = tmp_path / "copy"
    write_builder(root, per_shard=1)
    (root / "features.json").rename(root / "features.bak")
    with pytest.raises(OXEDataError, match=r"features\.json is missing"):
        RLDSSource(root)
    features = json.loads((root / "features.bak").read_text())
    del features["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]["action"]
    (root / "features.json").write_text(json.dumps(features))
    with pytest.raises(OXEDataError, match=r"no feature\(s\) \['steps/action'\].*steps/observation/image_0"):
        RLDSSource(root)
    with pytest.raises(OXEDataError, match=r"no split 'test'; splits: \['train'\]"):
        RLDSBuilder(bridge[0]).shards("test")
    unknown = tmp_path / "mine"
    write_builder(unknown, per_shard=1, info_name="my_robot")
    with pytest.raises(OXEDataError, match=r"dataset_info\.json.*'my_robot'.*bridge_dataset.*fractal20220817_data"):
        read_sources([unknown], False, {})
    with pytest.raises(EpisodeError, match=r"is a TFDS dataset directory: give one of its version directories"):
        read_sources([bridge[0].parent], False, {})
    builder = RLDSBuilder(bridge[0])
    shard = builder.shards()[0]
    with pytest.raises(OXEDataError, match=r"record 0 has no key 'steps/observation/image'; its keys: \["):
        next(_read_missing(builder, shard))


def _read_missing(builder: RLDSBuilder, shard: Path):
    """A key features.json declares but the records lack (a builder written by another tool)."""
    from robovlms_training.oxe.rlds import Feature

    builder.features["steps/observation/image"] = Feature("steps/observation/image", "image", (SIZE, SIZE, 3),
                                                          "uint8", "jpeg", True)
    return builder.read_shard(shard, ["steps/observation/image"])


def test_statistics_never_decode_images(tmp_path):
    written = write_builder(tmp_path / "broken", broken_images=True)
    source = RLDSSource(tmp_path / "broken")
    with pytest.raises(OXEDataError, match="an image cannot be decoded"):
        next(source())
    stats = dataset_action_statistics(source, min_range=0.01)
    raw = np.concatenate([np.c_[w["arm"], w["gripper"]] for w in written]).astype(np.float64)
    expected = ActionStatistics.from_actions(raw, 1.0, 99.0, 0.01)
    np.testing.assert_allclose(stats.low, expected.low)
    np.testing.assert_allclose(stats.high, expected.high)


def _synthetic(tag: str, count: int, length: int = 8):
    """A source of ``count`` tiny kinova episodes whose instructions say where they came from."""
    def source(part: int, parts: int):
        for i in range(part, count, parts):
            frames = np.full((length, SIZE, SIZE, 3), i % 255, np.uint8)
            actions = np.zeros((length, 7))
            yield Episode(Path(tag), f"{tag} {i}", tag, True, {"static": frames}, actions,
                          info={"embodiment": "kinova", "seed": f"{tag}/{i}"})
    return source


def _stream(sources, **kwargs):
    return StreamingWindowDataset(sources, CODECS, ["static"], SIZE, WINDOW, CHUNK, SEGMENT, **kwargs)


def test_weights_pick_sources_per_episode():
    dataset = _stream([(_synthetic("a", 5), 3.0), (_synthetic("b", 5), 1.0)], repeat=True)
    episodes = dataset.episodes(np.random.default_rng(0), 0, 1)
    tags = [next(episodes).task for _ in range(400)]
    assert 0.68 < tags.count("a") / len(tags) < 0.82
    finite = _stream([(_synthetic("a", 3), 100.0), (_synthetic("b", 4), 1.0)])
    assert sorted(e.instruction for e in finite.episodes(np.random.default_rng(1), 0, 1)) == \
        [f"a {i}" for i in range(3)] + [f"b {i}" for i in range(4)]  # exhausted sources drop out


def test_shuffle_buffer_mixes_rows():
    def order(buffer: int) -> list[str]:
        return [row["instruction"] for row in _stream([(_synthetic("a", 12, length=16), 1.0)],
                                                      shuffle_buffer=buffer)]
    plain, mixed = order(1), order(24)
    assert sorted(plain) == sorted(mixed) and len(plain) == 12 * 4  # 16 steps / segment 4: every row once
    same_neighbours = lambda rows: sum(a == b for a, b in zip(rows, rows[1:]))  # noqa: E731
    assert same_neighbours(plain) == 12 * 3 and same_neighbours(mixed) < 12


def test_workers_and_ranks_read_disjoint_shards(bridge, monkeypatch):
    root, written = bridge
    dataset = StreamingWindowDataset([(RLDSSource(root), 1.0)], CODECS, ["static"], SIZE, WINDOW, CHUNK, SEGMENT,
                                     shuffle_buffer=8)
    seen = []
    for rank in range(2):  # two simulated ranks of one worker each
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        assert streaming.worker_part() == (rank, 2)
        seen.append({row["instruction"] for row in dataset})
    assert seen == [{w["instruction"] for w in written if w["shard"] == s} for s in range(2)]
    monkeypatch.undo()
    rows = list(DataLoader(dataset, batch_size=None, num_workers=2))
    expected_rows = sum(-(-len(w["arm"]) // SEGMENT) for w in written)
    assert len(rows) == expected_rows  # each shard read by one worker only: no row twice
    assert {r["instruction"] for r in rows} == {w["instruction"] for w in written}
    for row in rows:
        assert row["frames"].shape == (WINDOW - 1 + SEGMENT, 1, SIZE, SIZE, 3) and row["frames"].dtype == torch.uint8
        assert row["actions"].shape == (WINDOW - 1 + SEGMENT, CHUNK, 7)
        assert row["action_mask"].shape == (WINDOW - 1 + SEGMENT, CHUNK)


def test_lerobot_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    episodes = []
    for i, n in enumerate((6, 9, 4)):
        actions = np.c_[rng.uniform(-0.02, 0.02, (n, 6)), rng.integers(0, 2, n)]
        episodes.append(Episode(Path(f"ep{i}"), f"stack block {i % 2}", "stack", True,
                                {"static": _frames(n, i), "wrist": _frames(n, i + 5)}, actions,
                                proprio=rng.normal(size=(n, 10)), info={"seed": i}))
    out = tmp_path / "lerobot"
    export(episodes, out)
    assert is_lerobot_dataset(out) and not is_lerobot_dataset(tmp_path)
    back = read_lerobot(out, LeRobotConfig(proprio_key="observation.state"))
    assert [len(e) for e in back] == [6, 9, 4] and [e.instruction for e in back] == [e.instruction for e in episodes]
    for read, original in zip(back, episodes):
        np.testing.assert_array_equal(read.actions, original.actions.astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(read.proprio, original.proprio, atol=1e-6)
        for camera in ("static", "wrist"):
            error = np.abs(read.frames[camera].astype(float) - original.frames[camera]).mean()
            assert error < 4.0, f"{camera}: mean abs pixel error {error:.1f} after h264 (a frame off is ~12)"
        assert read.info["embodiment"] == "kinova"
    source = LeRobotSource(out)
    assert [e.info["episode_index"] for e in source(1, 2)] == [1]
    suite_read = read_sources([out], False, {})  # a suite export: kinova units and its robot state, by default
    assert len(suite_read) == 3 and all(e.proprio is not None for e in suite_read)
    info_file = out / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    info["features"]["action"]["names"] = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]  # another robot's
    foreign = tmp_path / "foreign"
    shutil.copytree(out, foreign)
    (foreign / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(OXEDataError, match="not a robovlms-export-lerobot dataset"):
        read_sources([foreign], False, {})
    for video in out.rglob("*.mp4"):
        video.unlink()
    np.testing.assert_array_equal(np.concatenate(list(source.actions())),
                                  np.concatenate([e.actions for e in back]))  # no video needed
    with pytest.raises(OXEDataError, match=r"\.mp4 cannot be decoded"):
        next(source())
    with pytest.raises(OXEDataError, match=r"no feature\(s\) \['observation.images.top'\]"):
        LeRobotSource(out, LeRobotConfig(cameras={"observation.images.top": "static"}))


def test_a_placement_from_the_main_process_picks_the_rank_and_few_shards_split_by_record(tmp_path):
    written = write_builder(tmp_path / "one", shards=1, per_shard=4)
    source = RLDSSource(tmp_path / "one")
    parts = [[e.info["seed"] for e in source(part, 2)] for part in range(2)]
    assert all(parts) and not set(parts[0]) & set(parts[1])  # fewer files than parts: records alternate
    assert sorted(parts[0] + parts[1]) == sorted(f"bridge_dataset/{p.name}/{i}" for p in source.shards
                                                 for i in range(len(written)))
    dataset = StreamingWindowDataset([(source, 1.0)], CODECS, ["static"], SIZE, WINDOW, CHUNK, SEGMENT,
                                     shuffle_buffer=4)
    dataset.placement = (1, 2)  # what StreamPlacement sets before the workers start; no process group here
    assert {row["instruction"] for row in dataset} == {e.instruction for e in source(1, 2)}
    first = [row["instruction"] for row in dataset]
    dataset.start_step = 100  # a resumed run: the same rows, shuffled afresh
    again = [row["instruction"] for row in dataset]
    assert sorted(first) == sorted(again)
