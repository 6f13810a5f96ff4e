"""The trial bag format: rosbag2 (MCAP) of raw CDR messages, written and typed with the `rosbags` library
(rosbag2 itself is not on PyPI). Bags written here open with `ros2 bag info/play` on a system ROS 2 and with
rosbags/mcap readers anywhere; the trial recorder writes them and training reads them with the same types.

Crash safety: the MCAP writer keeps messages in a chunk in memory until 1 MiB has accumulated, so a killed
recorder could lose minutes of small topics. ``TrialBag`` closes the chunk and hands it to the OS every
``flush_interval_s`` of writing (and whenever the recorder's timer calls ``flush``): a SIGKILL loses at most that
much, whatever the data rate. Such a bag has no footer and no metadata.yaml; ``robovlms-bag-recover`` rewrites
it into a normal one.
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore, get_types_from_msg
from rosbags.typesys.store import Typestore


def make_typestore(interface_dirs: list[Path]) -> Typestore:
    """The ROS 2 Kilted standard types plus every .msg found under ``interface_dirs`` (<share>/<package>)."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    custom = {}
    for package_dir in interface_dirs:
        for msg_file in sorted(package_dir.glob("msg/*.msg")):
            name = f"{package_dir.name}/msg/{msg_file.stem}"
            custom.update(get_types_from_msg(msg_file.read_text(), name))
    typestore.register(custom)
    return typestore


def suite_typestore() -> Typestore:
    """The standard types plus robovlms_msgs, from the installed share directory or, failing that, the sources
    (reading bags needs no built workspace)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            return make_typestore([Path(get_package_share_directory("robovlms_msgs"))])
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    source = Path(__file__).resolve().parents[3] / "robovlms_msgs"
    if not (source / "msg").is_dir():
        raise FileNotFoundError("robovlms_msgs interfaces not found: source the workspace (scripts/env.sh) first")
    return make_typestore([source])


FLUSH_INTERVAL_S = 0.5
# metadata.yaml custom_data keys: the trial's record (written at close) and its label (added when labelled).
TRIAL_KEY, LABEL_KEY = "robovlms.trial", "robovlms.label"


class TrialBag:
    """One rosbag2 directory being written; topics are added on first use."""

    def __init__(self, path: Path, typestore: Typestore, flush_interval_s: float = FLUSH_INTERVAL_S,
                 compress: bool = False) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._typestore = typestore
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compress:  # zstd MCAP chunks, as `ros2 bag record --compression-mode file` writes them
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        self._connections = {}
        self._flushed_at = time.monotonic()
        self.message_counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, cdr: bytes) -> None:
        """Append one serialised (CDR) message received at ``stamp_ns``."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
            self._connections[topic] = connection
            self.message_counts[topic] = 0
        self._writer.write(connection, stamp_ns, cdr)
        self.message_counts[topic] += 1
        if time.monotonic() - self._flushed_at >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Close the pending chunk and pass the file's buffer to the OS (survives the process being killed)."""
        # rosbags' MCAP writer has no public flush; its storage object is reached directly (rosbags is pinned,
        # and tests/robovlms_policy/test_trial_crash_safety.py checks a killed recorder's bag keeps its data).
        storage = self._writer.storage
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        self._flushed_at = time.monotonic()

    def set_custom_data(self, key: str, value: str) -> None:
        """Stored in metadata.yaml's custom_data when the bag is closed (`ros2 bag info` lists it)."""
        self._writer.set_custom_data(key, value)

    def close(self) -> None:
        self._writer.close()


def set_bag_custom_data(bag_dir: Path, key: str, value: str) -> bool:
    """Add or replace one custom_data entry of a closed bag's metadata.yaml; False when it has none (a bag
    whose writer died: recover it first)."""
    path = bag_dir / "metadata.yaml"
    if not path.is_file():
        return False
    document = yaml.safe_load(path.read_text())
    info = document["rosbag2_bagfile_information"]
    info["custom_data"] = {**(info.get("custom_data") or {}), key: value}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return True
