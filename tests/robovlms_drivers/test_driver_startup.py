"""`kinova_driver` start-up failures are one clear line and a non-zero exit, never a traceback."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
PATHS = [REPO / "ros2_ws" / "src" / "robovlms_drivers", REPO / "sim_bridges" / "robovlms_twin"]


def run_driver(*ros_args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, PATHS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "robovlms_drivers.kinova.driver_node", "--ros-args", *ros_args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(importlib.util.find_spec("kortex_api") is not None, reason="kortex_api is installed here")
def test_kortex_backend_without_sdk_says_how_to_install():
    result = run_driver("-p", "backend:=kortex")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "kortex_api" in result.stderr and "pip install" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["-p", "backend:=ur5"], "no arm backend named 'ur5' is installed; installed: ['calvin', 'kortex', 'sim', 'simpler']"),
    (["-p", "control_rate:=10.0"], "parameter 'control_rate' must be >= 50"),
    (["-p", "workspace_min:=[0.9, 0.0, 0.0]", "-p", "workspace_max:=[0.1, 1.0, 1.0]"], "workspace box"),
    (["-p", "watchdog_timeout:=fast"], "parameter 'watchdog_timeout'"),
])
def test_bad_parameters_exit_cleanly(args, fragment):
    result = run_driver(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr, result.stderr
