"""sha256 of a checkpoint's files, streamed (weights can be several GB); torch-free, for the trial records and
the ONNX export's tie to its weights."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()
