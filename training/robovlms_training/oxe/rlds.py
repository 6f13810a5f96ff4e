"""A user's local RLDS / TFDS builder directory (``~/tensorflow_datasets/bridge_dataset/1.0.0/``) read without
TensorFlow.

A prepared TFDS builder directory holds ``dataset_info.json`` (name, version, splits with one length per shard),
``features.json`` (the FeaturesDict, as TFDS writes it) and the shards
``<name>-<split>.tfrecord-00000-of-000NN``. Each record is one episode, a ``tf.train.Example`` whose nested
features are flattened with ``/``: the steps of an RLDS episode (``steps``, a TFDS ``Dataset`` feature) are
stored per feature across all steps, e.g.

    steps/observation/image_0   bytes list, one encoded JPEG / PNG per step
    steps/action                float list of T * 7 values
    steps/language_instruction  bytes list, one string per step
    steps/is_first              int64 list (TFDS stores bools as integers)

TFRecord framing and Example parsing are the ``tfrecord`` package's; only the keys a caller asks for are
converted, so statistics over actions never decode an image.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from google.protobuf.message import DecodeError

DATASET_INFO = "dataset_info.json"
FEATURES = "features.json"
STEPS = "steps"
# Split names differ between builders (Bridge: train / val, others: train / test); the usual aliases resolve.
SPLIT_ALIASES = {"val": ("val", "validation"), "validation": ("validation", "val")}
_SHARD = re.compile(r"^(?P<prefix>.+)\.tfrecord-(?P<index>\d{5})-of-(?P<count>\d{5})$")
_NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64, "int8": np.int8,
                 "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "uint16": np.uint16,
                 "uint32": np.uint32, "bool": np.bool_}


class OXEDataError(ValueError):
    """An RLDS / LeRobot directory, its metadata or a record is missing, corrupt or lacks a needed key; the
    message names the file."""


@dataclass(frozen=True)
class Feature:
    """One leaf of features.json, under its flattened record key (``steps/observation/image_0``)."""

    key: str
    kind: str  # "tensor", "scalar", "image", "text" or "other" (a connector this reader does not decode)
    shape: tuple[int | None, ...]
    dtype: str  # "float32", "uint8", "string", ...
    encoding: str = "none"  # tensors: "none" (a numeric list) or TFDS's byte encodings; images: jpeg / png
    per_step: bool = False  # under the ``steps`` Dataset feature: one value per step


def _dims(spec: dict) -> tuple[int | None, ...]:
    dims = spec.get("shape", {}).get("dimensions", [])
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def _leaves(node: dict, key: str, per_step: bool) -> Iterator[Feature]:
    """Walk a features.json node: FeaturesDicts nest (their names join with "/", as TFDS flattens them), a
    Dataset / Sequence marks everything below it as per step, anything else is a leaf."""
    if "featuresDict" in node:
        for name, child in node["featuresDict"].get("features", {}).items():
            yield from _leaves(child, f"{key}/{name}" if key else name, per_step)
    elif "sequence" in node:
        yield from _leaves(node["sequence"].get("feature", {}), key, True)
    elif "image" in node:
        spec = node["image"]
        yield Feature(key, "image", _dims(spec), spec.get("dtype", "uint8"), spec.get("encodingFormat", "png"),
                      per_step)
    elif "text" in node:
        yield Feature(key, "text", (), "string", "none", per_step)
    elif "tensor" in node:
        spec = node["tensor"]
        kind = "scalar" if node.get("pythonClassName", "").endswith("scalar.Scalar") else "tensor"
        yield Feature(key, kind, _dims(spec), spec.get("dtype", "float32"), spec.get("encoding", "none"), per_step)
    else:
        yield Feature(key, "other", (), "", "none", per_step)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise OXEDataError(f"{path} is missing: a prepared TFDS builder directory (<name>/<version>/) holds "
                           f"{DATASET_INFO}, {FEATURES} and <name>-<split>.tfrecord-NNNNN-of-NNNNN shards")
    return read_json_object(path)


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; OXEDataError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OXEDataError(f"{path} cannot be read: {err}") from err
    if not isinstance(data, dict):
        raise OXEDataError(f"{path} does not hold a JSON object")
    return data


def parse_features(path: str | Path) -> dict[str, Feature]:
    """The leaves of a TFDS features.json by flattened record key."""
    path = Path(path)
    data = _read_json(path)
    if "featuresDict" not in data:
        raise OXEDataError(f"{path} is not a TFDS FeaturesDict (no 'featuresDict' at the top)")
    return {feature.key: feature for feature in _leaves(data, "", False)}


def is_rlds_builder(path: str | Path) -> bool:
    path = Path(path)
    return (path / DATASET_INFO).is_file() and (path / FEATURES).is_file()


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Encoded JPEG / PNG -> uint8 (H, W, 3) RGB (PIL comes with matplotlib, a dependency of the suite)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as err:
        raise OXEDataError(f"{where}: an image cannot be decoded: {err}") from err


class RLDSBuilder:
    """One prepared builder directory: its name, splits, features and shard files."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise OXEDataError(f"{self.directory} is not a directory (expected a TFDS builder directory such as "
                               "~/tensorflow_datasets/bridge_dataset/1.0.0)")
        self.info = _read_json(self.directory / DATASET_INFO)
        self.name = str(self.info.get("name", ""))
        if not self.name:
            raise OXEDataError(f"{self.directory / DATASET_INFO} has no 'name'")
        self.version = str(self.info.get("version", ""))
        file_format = self.info.get("fileFormat", "tfrecord")
        if file_format not in ("tfrecord", "TFRECORD"):
            raise OXEDataError(f"{self.directory / DATASET_INFO}: file format {file_format!r} is not supported "
                               "(only tfrecord shards)")
        self.features = parse_features(self.directory / FEATURES)
        self.split_lengths = {str(s.get("name")): [int(n) for n in s.get("shardLengths", [])]
                              for s in self.info.get("splits", []) if isinstance(s, dict)}

    def split_name(self, split: str) -> str:
        """``split`` as this builder spells it (val / validation are aliases); OXEDataError listing the splits."""
        for name in SPLIT_ALIASES.get(split, (split,)):
            if name in self.split_lengths:
                return name
        raise OXEDataError(f"{self.directory / DATASET_INFO} has no split {split!r}; splits: "
                           f"{sorted(self.split_lengths)}")

    def shards(self, split: str = "train") -> list[Path]:
        """The split's shard files in shard order, checked against the shard count dataset_info.json declares."""
        name = self.split_name(split)
        prefix = f"{self.name}-{name}"
        files = sorted(p for p in self.directory.iterdir()
                       if (m := _SHARD.match(p.name)) and m.group("prefix") == prefix)
        if not files:
            raise OXEDataError(f"{self.directory} has no shard files {prefix}.tfrecord-NNNNN-of-NNNNN")
        declared = self.split_lengths[name]
        if declared and len(declared) != len(files):
            raise OXEDataError(f"{self.directory / DATASET_INFO} declares {len(declared)} shard(s) for split "
                               f"{name!r} but {self.directory} holds {len(files)}")
        return files

    def check_keys(self, keys: Sequence[str]) -> None:
        missing = [k for k in keys if k not in self.features]
        if missing:
            raise OXEDataError(f"{self.directory / FEATURES} has no feature(s) {missing}; it defines: "
                               f"{sorted(self.features)}")

    def read_shard(self, shard: Path, keys: Sequence[str], decode: bool = True) -> Iterator[dict[str, Any]]:
        """Each episode (record) of ``shard`` with only ``keys`` converted: numeric features as arrays (T, *shape)
        when per step, texts as lists of str, images as uint8 (T, H, W, 3) (or their encoded bytes when not
        ``decode``).

        Records come from ``tfrecord.reader.tfrecord_iterator`` and are parsed with the package's
        ``example_pb2``; its ``tfrecord_loader`` is not used because it turns a bytes list into a fixed-width
        numpy array, which drops trailing NUL bytes of encoded images and returns a bare bytes object for a
        one-step episode."""
        from tfrecord import example_pb2
        from tfrecord.reader import tfrecord_iterator

        self.check_keys(keys)
        try:
            for index, record in enumerate(tfrecord_iterator(str(shard))):
                example = example_pb2.Example()
                example.ParseFromString(bytes(record))
                yield self._convert(example.features.feature, keys, f"{shard} record {index}", decode)
        except (RuntimeError, OSError) as err:  # tfrecord raises RuntimeError on a truncated record
            raise OXEDataError(f"{shard} is corrupt or unreadable: {err}") from err
        except DecodeError as err:
            raise OXEDataError(f"{shard} holds a record that is not a tf.train.Example: {err}") from err

    def _convert(self, stored: Any, keys: Sequence[str], where: str, decode: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in keys:
            if key not in stored:
                raise OXEDataError(f"{where} has no key {key!r}; its keys: {sorted(stored.keys())}")
            feature = stored[key]
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            out[key] = _to_value(self.features[key], values, where, decode)
        return out


def _to_value(feature: Feature, values: list, where: str, decode: bool) -> Any:
    if feature.kind == "image":
        if not decode:
            return values
        return np.stack([decode_image(v, f"{where} {feature.key}") for v in values]) if values else \
            np.zeros((0, 0, 0, 3), np.uint8)
    if feature.kind == "text" or feature.dtype == "string":
        return [v.decode("utf-8", errors="replace") for v in values]
    if feature.kind == "other" or feature.dtype not in _NUMPY_DTYPES:
        raise OXEDataError(f"{where}: feature {feature.key!r} ({feature.kind}, dtype {feature.dtype!r}) is not "
                           "a tensor, image or text this reader converts")
    if feature.encoding != "none":
        raise OXEDataError(f"{where}: feature {feature.key!r} uses tensor encoding {feature.encoding!r}; only "
                           "'none' (plain numeric lists) is supported")
    array = np.asarray(values).astype(_NUMPY_DTYPES[feature.dtype])
    inner = tuple(-1 if d is None else d for d in feature.shape)
    try:
        return array.reshape((-1, *inner) if feature.per_step else inner)
    except ValueError as err:
        raise OXEDataError(f"{where}: {feature.key!r} holds {array.size} values, which do not fit shape "
                           f"{feature.shape}{' per step' if feature.per_step else ''}") from err
