"""`make setup`: idempotent, recovers from interrupted steps, names the step that fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAMPS = ROOT / ".venv" / ".robovlms-stamps"


def run_setup(**env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_ROS_WHEELS")}
    env.update(env_overrides)
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def stamp_snapshot() -> dict[str, tuple[str, int]]:
    return {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in STAMPS.iterdir()}


def test_second_setup_is_a_no_op():
    first = run_setup()
    assert first.returncode == 0, first.stderr
    before = stamp_snapshot()
    install_marker = ROOT / "ros2_ws" / "install" / "setup.bash"
    install_mtime = install_marker.stat().st_mtime_ns

    second = run_setup()
    assert second.returncode == 0, second.stderr
    assert "installing" not in second.stdout and "building" not in second.stdout, second.stdout
    assert "rewrote" not in second.stdout, "CMake exports were rewritten twice"
    assert stamp_snapshot() == before
    assert install_marker.stat().st_mtime_ns == install_mtime
    assert {"torch", "python", "colcon"} <= set(before)


def test_lost_build_stamp_rebuilds_then_settles():
    (STAMPS / "colcon").unlink()
    rebuilt = run_setup()
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "building the workspace with colcon" in rebuilt.stdout
    settled = run_setup()
    assert settled.returncode == 0 and "building" not in settled.stdout


def test_missing_python_names_the_step():
    result = run_setup(PYTHON="python3.11-that-does-not-exist")
    assert result.returncode != 0
    assert "step 'python'" in result.stderr and "Python 3.11" in result.stderr


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the wheel paths are specific to CPython 3.11")
def test_cmake_export_rewrite_is_idempotent(tmp_path: Path):
    script = ROOT / "scripts" / "fix_ros_wheel_cmake.py"
    export = tmp_path / "share" / "std_msgs" / "cmake" / "export_std_msgs__rosidl_generator_pyExport.cmake"
    export.parent.mkdir(parents=True)
    (tmp_path / "share" / "ament_cmake").mkdir()
    export.write_text('INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp311-cp311/include/python3.11;'
                      '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"\n')
    index = tmp_path / "share" / "ament_index" / "resource_index" / "parent_prefix_path" / "std_msgs"
    index.parent.mkdir(parents=True)
    index.write_text("/opt/python/cp311-cp311")

    first = subprocess.run([sys.executable, str(script), "--prefix", str(tmp_path)], capture_output=True, text=True)
    assert first.returncode == 0 and "rewrote" in first.stdout and "2 " in first.stdout
    text = export.read_text()
    assert "/opt/python" not in text and "numpy/_core/include" in text
    assert index.read_text() == str(tmp_path)
    second = subprocess.run([sys.executable, str(script), "--prefix", str(tmp_path)], capture_output=True, text=True)
    assert second.returncode == 0 and second.stdout == ""


def test_cmake_rewrite_without_wheels_fails_clearly(tmp_path: Path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "fix_ros_wheel_cmake.py"), "--prefix",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "no ament_cmake" in result.stderr

