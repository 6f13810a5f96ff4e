"""robovlms-bag-recover on bags left by a dead writer: flushed chunks only, a torn last chunk, and refusals."""
from __future__ import annotations

from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from robovlms_policy.trials.bag_format import TrialBag, suite_typestore
from robovlms_policy.trials.bag_recover import RecoveryError, main, recover

TOPIC, MSGTYPE = "/instruction", "std_msgs/msg/String"


def abandoned_bag(path: Path, total: int, flush_at: tuple[int, ...], compress: bool = False) -> tuple[Path, list[int]]:
    """A bag whose writer stopped without closing after ``total`` messages, flushed after the counts in
    ``flush_at`` (the rest died with the process); also the file's size after each flush."""
    typestore = suite_typestore()
    bag = TrialBag(path, typestore, flush_interval_s=1e9, compress=compress)  # flushes only when told
    sizes = []
    for i in range(total):
        cdr = typestore.serialize_cdr(typestore.types[MSGTYPE](data=f"step {i}"), MSGTYPE)
        bag.write(TOPIC, MSGTYPE, (i + 1) * 1_000_000, cdr)
        if i + 1 in flush_at:
            bag.flush()
            sizes.append((path / f"{path.name}.mcap").stat().st_size)
    return path, sizes


def messages(bag: Path) -> list[str]:
    typestore = suite_typestore()
    with Reader(bag) as reader:
        return [typestore.deserialize_cdr(raw, c.msgtype).data for c, _, raw in reader.messages()]


def test_flushed_messages_come_back_in_place(tmp_path):
    bag, _ = abandoned_bag(tmp_path / "bag", total=10, flush_at=(3, 7))
    assert not (bag / "metadata.yaml").exists()
    result = recover(bag)
    assert result.messages == {TOPIC: 7} and result.out == bag
    assert messages(bag) == [f"step {i}" for i in range(7)]
    assert (tmp_path / "bag.damaged" / "bag.mcap").is_file()
    with pytest.raises(RecoveryError, match="intact"):
        recover(bag)


def test_a_torn_last_record_is_cut_off(tmp_path):
    bag, sizes = abandoned_bag(tmp_path / "bag", total=8, flush_at=(4, 8))
    mcap = bag / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:sizes[0] + 40])  # the second chunk torn 40 bytes in
    result = recover(bag, tmp_path / "out")
    assert result.torn_tail and result.messages[TOPIC] == 4
    assert messages(tmp_path / "out") == [f"step {i}" for i in range(4)]


def test_refusals_exit_1_with_the_reason(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "not a rosbag2 MCAP directory" in capsys.readouterr().err
    bag, _ = abandoned_bag(tmp_path / "bag", total=2, flush_at=(2,))
    (tmp_path / "taken").mkdir()
    assert main([str(bag), "--out", str(tmp_path / "taken")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_a_compressed_bag_reads_and_recovers(tmp_path):
    typestore = suite_typestore()
    closed = TrialBag(tmp_path / "closed", typestore, compress=True)
    for i in range(50):
        closed.write(TOPIC, MSGTYPE, (i + 1) * 1000, typestore.serialize_cdr(typestore.types[MSGTYPE](data="x" * 500),
                                                                            MSGTYPE))
    closed.close()
    assert (tmp_path / "closed" / "closed.mcap").stat().st_size < 50 * 500 / 4  # zstd chunks
    assert len(messages(tmp_path / "closed")) == 50
    bag, _ = abandoned_bag(tmp_path / "bag", total=6, flush_at=(3,), compress=True)
    assert recover(bag).messages == {TOPIC: 3}
