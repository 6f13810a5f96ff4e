"""Splitting an evaluation over machines: ``--shard I/N`` takes the I-th of N contiguous parts of a run's
episode list (sizes differ by at most one), so the parts of one run cover it exactly once."""
from __future__ import annotations

import argparse
from typing import Sequence, TypeVar

Item = TypeVar("Item")


def parse_shard(text: str) -> tuple[int, int]:
    """argparse type of --shard: "I/N" with 0 <= I < N."""
    try:
        shard, shards = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes I/N (e.g. 0/4), not {text!r}") from None
    if shards < 1 or not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= I < N")
    return shard, shards


def take_shard(items: Sequence[Item], shard: int = 0, shards: int = 1) -> list[Item]:
    """Part ``shard`` of ``shards`` contiguous parts of ``items``."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: need 0 <= shard < shards")
    size, extra = divmod(len(items), shards)
    start = shard * size + min(shard, extra)
    return list(items[start:start + size + (1 if shard < extra else 0)])
