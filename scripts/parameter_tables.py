"""The README's parameter tables, generated from each node's one parameter declaration (robovlms_io.params).

    python scripts/parameter_tables.py           # print every table
    python scripts/parameter_tables.py --write   # rewrite the tables in README.md between their markers
    python scripts/parameter_tables.py --check   # exit 1 if README.md is out of date (a test runs this)

Markers: ``<!-- parameters: NODE -->`` ... ``<!-- /parameters -->``.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from robovlms_io.params import parameter_table

README = Path(__file__).resolve().parents[1] / "README.md"
NODES = {
    "policy_node": "robovlms_policy.node.policy_node:PolicyNodeParams",
    "kinova_driver": "robovlms_drivers.kinova.driver_node:DriverParams",
    "realsense_camera": "robovlms_drivers.cameras.realsense_node:RealSenseParams",
    "azure_kinect_camera": "robovlms_drivers.cameras.azure_kinect_node:AzureKinectParams",
    "twin_bridge": "robovlms_twin.twin_bridge_node:TwinBridgeParams",
    "calvin_bridge": "robovlms_calvin.calvin_bridge_node:CalvinBridgeParams",
    "simpler_bridge": "robovlms_simpler.simpler_bridge_node:SimplerBridgeParams",
    "trial_recorder": "robovlms_policy.trials.trial_recorder_node:TrialRecorderParams",
}
BLOCK = re.compile(r"(<!-- parameters: (\w+) -->\n)(.*?)(<!-- /parameters -->)", re.S)


def params_class(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def tables() -> dict[str, str]:
    return {node: parameter_table(params_class(path)) for node, path in NODES.items()}


def updated_readme(text: str) -> str:
    generated = tables()
    found = set()

    def replace(match: re.Match) -> str:
        node = match.group(2)
        if node not in generated:
            raise KeyError(f"README.md has a parameter block for unknown node {node!r}")
        found.add(node)
        return f"{match.group(1)}{generated[node]}\n{match.group(4)}"

    text = BLOCK.sub(replace, text)
    missing = sorted(set(generated) - found)
    if missing:
        raise KeyError(f"README.md has no parameter block for {missing}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for node, table in tables().items():
            print(f"**{node}**\n\n{table}\n")
        return 0
    text = README.read_text()
    new = updated_readme(text)
    if args.check:
        if new != text:
            print("README.md parameter tables are out of date: run python scripts/parameter_tables.py --write",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
