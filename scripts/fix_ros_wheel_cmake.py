"""Point the ROS 2 PyPI wheels' CMake exports at this interpreter.

The ros-kilted-* wheels are built in a manylinux container whose Python lives in /opt/python/cp311-cp311.
Their generated CMake exports (e.g. std_msgs' rosidl_generator_py target) and ament index entries keep that
path, so building any package that depends on them fails. This rewrites the three forms of the path to the
equivalents of the interpreter running this script. Idempotent: files already rewritten are left alone.
"""
from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path

WHEEL_PREFIX = "/opt/python/cp311-cp311"


def replacements(prefix: Path) -> list[tuple[str, str]]:
    """Ordered (old, new) pairs: the most specific paths first, then the bare prefix."""
    paths = sysconfig.get_paths()
    return [
        (f"{WHEEL_PREFIX}/include/python3.11", paths["include"]),
        (f"{WHEEL_PREFIX}/lib/python3.11/site-packages", paths["purelib"]),
        (WHEEL_PREFIX, str(prefix)),
    ]


def candidate_files(prefix: Path) -> list[Path]:
    share = prefix / "share"
    files = list(share.glob("*/cmake/*.cmake"))
    files += list((share / "ament_index" / "resource_index" / "parent_prefix_path").glob("*"))
    return [f for f in files if f.is_file()]


def rewrite(prefix: Path) -> int:
    """Rewrite every candidate file that still mentions the wheel prefix; return how many changed."""
    changed = 0
    pairs = replacements(prefix)
    for path in candidate_files(prefix):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if WHEEL_PREFIX not in text:
            continue
        for old, new in pairs:
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        changed += 1
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="environment holding the wheels")
    args = parser.parse_args()
    if not (args.prefix / "share" / "ament_cmake").is_dir():
        print(f"fix_ros_wheel_cmake: no ament_cmake under {args.prefix}/share: are the ROS 2 wheels installed?",
              file=sys.stderr)
        return 1
    changed = rewrite(args.prefix)
    if changed:
        print(f"[setup:cmake] rewrote the wheel builder's Python paths in {changed} CMake/ament files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
