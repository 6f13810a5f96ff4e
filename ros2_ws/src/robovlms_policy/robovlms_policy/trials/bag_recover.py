"""robovlms-bag-recover: turn a rosbag2 MCAP bag whose writer died (no summary, no footer, no metadata.yaml;
possibly a torn last record) into a normal bag that `ros2 bag info`, rosbags and training open.

The file is read front to back with the `mcap` library's stream reader up to the last complete record; the
messages are written into a new bag with the suite's types. By default the damaged bag is kept beside the
recovered one as ``<bag>.damaged`` and the recovered bag takes its place.

    robovlms-bag-recover runs/trials/<trial>/bag [--out DIR]
"""
from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from .bag_format import suite_typestore


class RecoveryError(RuntimeError):
    """The bag cannot be recovered; the message says why."""


@dataclass
class Recovery:
    out: Path
    messages: dict[str, int] = field(default_factory=dict)  # topic -> recovered messages
    first_ns: int = 0
    last_ns: int = 0
    torn_tail: str = ""  # why reading stopped before the end of the file ("" when it ended cleanly)
    skipped_topics: list[str] = field(default_factory=list)  # of types the suite does not know

    def describe(self) -> str:
        total = sum(self.messages.values())
        span = (self.last_ns - self.first_ns) / 1e9 if total else 0.0
        lines = [f"recovered {total} messages over {span:.2f} s into {self.out}"]
        lines += [f"  {topic}: {count}" for topic, count in sorted(self.messages.items())]
        if self.torn_tail:
            lines.append(f"  the file ended inside a record ({self.torn_tail}); everything before it was kept")
        if self.skipped_topics:
            lines.append(f"  skipped (message type unknown to the suite): {', '.join(self.skipped_topics)}")
        return "\n".join(lines)


def is_intact(bag_dir: Path) -> bool:
    try:
        with Reader(bag_dir):
            return True
    except Exception:  # rosbags raises several types for a missing metadata.yaml or footer
        return False


def recover(bag_dir: str | Path, out: str | Path | None = None) -> Recovery:
    """Rewrite the damaged bag at ``bag_dir`` into ``out`` (default: in place, the original kept as .damaged)."""
    bag_dir = Path(bag_dir)
    files = sorted(bag_dir.glob("*.mcap")) if bag_dir.is_dir() else []
    if len(files) != 1:
        raise RecoveryError(f"{bag_dir} is not a rosbag2 MCAP directory with one .mcap file (found {len(files)})")
    if is_intact(bag_dir):
        raise RecoveryError(f"{bag_dir} is intact (it opens with its metadata and index): nothing to recover")
    in_place = out is None
    target = bag_dir.with_name(bag_dir.name + ".recovered") if in_place else Path(out)
    if target.exists():
        raise RecoveryError(f"{target} already exists; remove it or give another --out")
    recovery = _rewrite(files[0], target)
    if in_place:
        bag_dir.rename(bag_dir.with_name(bag_dir.name + ".damaged"))
        target.rename(bag_dir)
        recovery.out = bag_dir
    return recovery


def _rewrite(mcap_file: Path, target: Path) -> Recovery:
    typestore = suite_typestore()
    recovery = Recovery(out=target)
    schemas: dict[int, str] = {}
    channels: dict[int, Channel] = {}
    connections: dict[int, object] = {}
    writer = Writer(target, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        with mcap_file.open("rb") as stream:
            try:
                for record in StreamReader(stream).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = record
                    elif isinstance(record, Message):
                        _write(writer, record, channels, schemas, connections, typestore, recovery)
            except (McapError, EOFError, ValueError, struct.error) as err:  # a torn last record or chunk
                recovery.torn_tail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    finally:
        writer.close()
    return recovery


def _write(writer: Writer, message: Message, channels: dict, schemas: dict, connections: dict, typestore,
           recovery: Recovery) -> None:
    channel = channels.get(message.channel_id)
    if channel is None:
        return
    if message.channel_id not in connections:
        msgtype = schemas.get(channel.schema_id, "")
        if msgtype not in typestore.types:
            if channel.topic not in recovery.skipped_topics:
                recovery.skipped_topics.append(channel.topic)
            return
        connections[message.channel_id] = writer.add_connection(channel.topic, msgtype, typestore=typestore)
    writer.write(connections[message.channel_id], message.log_time, message.data)
    recovery.messages[channel.topic] = recovery.messages.get(channel.topic, 0) + 1
    recovery.first_ns = min(recovery.first_ns or message.log_time, message.log_time)
    recovery.last_ns = max(recovery.last_ns, message.log_time)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-bag-recover", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="the damaged bag directory (holds one .mcap)")
    parser.add_argument("--out", type=Path, help="write the recovered bag here and leave the damaged one as it is")
    args = parser.parse_args(argv)
    try:
        print(recover(args.bag, args.out).describe())
    except (RecoveryError, OSError) as err:
        print(f"robovlms-bag-recover: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
