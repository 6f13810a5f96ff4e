"""Open X-Embodiment streaming loader throughput: an RLDS builder directory (Bridge V2's layout, JPEG frames) read
shard by shard, decoded, cut into training rows (window 8, chunk 10, frames resized to 64 px), shuffled and
collated through a torch DataLoader with 0 and 2 workers, in rows and supervised steps per second; plus the
action-statistics pass, which never decodes an image. Prints a markdown table for the README.

    python benchmarks/loader_throughput.py                          # a synthetic builder directory
    python benchmarks/loader_throughput.py --builder ~/tensorflow_datasets/bridge_dataset/1.0.0 --workers 0 2 4

One pass over the data per configuration; worker start-up is included, as a training epoch pays it.
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tfrecord.writer import TFRecordWriter
from torch.utils.data import DataLoader

from robovlms_policy.vla.action_codec import ActionCodec
from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_training.dataset import WindowCollator
from robovlms_training.oxe.mixtures import RLDSSource
from robovlms_training.oxe.streaming import StreamingWindowDataset, dataset_action_statistics

NAME, EPISODES, STEPS, SHARDS, PIXELS = "bridge_dataset", 64, 40, 8, 128
IMAGE_SIZE, WINDOW, CHUNK, SEGMENT, BATCH = 64, 8, 10, 16, 8
TFDS = "tensorflow_datasets.core.features."


def _leaf(cls: str, body: dict) -> dict:
    return {"pythonClassName": TFDS + cls, **body}


def _dict(features: dict) -> dict:
    return _leaf("features_dict.FeaturesDict", {"featuresDict": {"features": features}})


def synthetic_builder(root: Path) -> Path:
    """Bridge V2's keys (image_0, language_instruction, 7-D action), random-texture JPEG frames."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    texture = rng.integers(0, 256, (PIXELS // 8, PIXELS // 8, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    for shard in range(SHARDS):
        writer = TFRecordWriter(str(root / f"{NAME}-train.tfrecord-{shard:05d}-of-{SHARDS:05d}"))
        for _ in range(EPISODES // SHARDS):
            images = []
            for t in range(STEPS):
                out = io.BytesIO()
                Image.fromarray(np.roll(texture, t, axis=1)).save(out, format="JPEG", quality=90)
                images.append(out.getvalue())
            actions = np.c_[rng.uniform(-0.02, 0.02, (STEPS, 6)), rng.integers(0, 2, STEPS)]
            writer.write({"steps/observation/image_0": (images, "byte"),
                          "steps/language_instruction": ([b"put the spoon in the pot"] * STEPS, "byte"),
                          "steps/action": (actions.ravel(), "float")})
        writer.close()
    image = _leaf("image_feature.Image", {"image": {"shape": {"dimensions": [str(PIXELS), str(PIXELS), "3"]},
                                                    "dtype": "uint8", "encodingFormat": "jpeg"}})
    step = _dict({"observation": _dict({"image_0": image}), "language_instruction": _leaf("text_feature.Text",
                  {"text": {}}), "action": _leaf("tensor_feature.Tensor", {"tensor": {
                      "shape": {"dimensions": ["7"]}, "dtype": "float32", "encoding": "none"}})})
    features = _dict({"steps": _leaf("dataset_feature.Dataset", {"sequence": {"feature": step, "length": "-1"}})})
    (root / "features.json").write_text(json.dumps(features, indent=1))
    info = {"name": NAME, "version": "1.0.0", "fileFormat": "tfrecord",
            "splits": [{"name": "train", "shardLengths": [str(EPISODES // SHARDS)] * SHARDS}]}
    (root / "dataset_info.json").write_text(json.dumps(info, indent=1))
    return root


def measure(builder: Path, workers: list[int], work: Path) -> None:
    source = RLDSSource(builder)
    start = time.perf_counter()
    episodes = sum(1 for _ in source.actions())
    stats_s = time.perf_counter() - start
    codec = ActionCodec(dataset_action_statistics(source), source.embodiment)
    create_checkpoint(work / "ckpt", "paligemma", "policy_head", image_size=IMAGE_SIZE, window=WINDOW, chunk=CHUNK,
                      embodiment=source.embodiment, camera_names=["static"])
    _, config, tokenizer = load_checkpoint(work / "ckpt")
    dataset = StreamingWindowDataset([(source, 1.0)], codec, ["static"], IMAGE_SIZE, WINDOW, CHUNK, SEGMENT,
                                     shuffle_buffer=256)
    print(f"| OXE streaming loader ({'synthetic ' if builder.is_relative_to(work) else ''}{source.spec.name}, "
          f"{episodes} episodes, {len(source.shards)} shards, {IMAGE_SIZE} px, window {WINDOW}, chunk {CHUNK}) "
          "| rows/s | supervised steps/s |\n|---|---:|---:|")
    print(f"| action statistics pass (images skipped): {episodes / stats_s:,.0f} episodes/s | | |")
    for count in workers:
        loader = DataLoader(dataset, batch_size=BATCH, num_workers=count,
                            collate_fn=WindowCollator(tokenizer, config.max_instruction_tokens))
        rows = steps = 0
        start = time.perf_counter()
        for batch in loader:
            rows += len(batch["actions"])
            steps += int(batch["action_mask"][:, :, 0].sum())
        elapsed = time.perf_counter() - start
        print(f"| DataLoader, {count} worker{'s' * (count != 1)}, batch {BATCH} | {rows / elapsed:,.1f} "
              f"| {steps / elapsed:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder", type=Path, help="RLDS builder directory (default: a synthetic one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the main process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_oxe_") as work:
        work = Path(work)
        measure(args.builder or synthetic_builder(work / NAME / "1.0.0"), args.workers, work)


if __name__ == "__main__":
    main()
