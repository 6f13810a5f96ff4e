"""The README's parameter tables are generated from the nodes' parameter declarations and must be current."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.ros
def test_parameter_tables_are_current():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "parameter_tables.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
