"""The import rules of the README's ARCHITECTURE section, enforced on the sources (every import statement, also
the lazy ones inside functions) and, for the real-arm install, by importing the driver package in a process
where the simulator, torch and the policy package cannot be imported."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "robovlms_io": REPO / "ros2_ws/src/robovlms_io/robovlms_io",
    "robovlms_drivers": REPO / "ros2_ws/src/robovlms_drivers/robovlms_drivers",
    "robovlms_policy": REPO / "ros2_ws/src/robovlms_policy/robovlms_policy",
    "robovlms_twin": REPO / "sim_bridges/robovlms_twin/robovlms_twin",
    "robovlms_demo": REPO / "sim_bridges/robovlms_demo/robovlms_demo",
    "robovlms_calvin": REPO / "sim_bridges/robovlms_calvin/robovlms_calvin",
    "robovlms_simpler": REPO / "sim_bridges/robovlms_simpler/robovlms_simpler",
    "robovlms_training": REPO / "training/robovlms_training",
}
ROS_MODULES = {"rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs", "builtin_interfaces",
               "std_srvs", "robovlms_msgs", "ament_index_python"}
HEAVY = {"torch", "transformers", "safetensors", "tokenizers", "lightning", "mujoco"}
# Modules of the shared package that import nothing but numpy and the standard library.
PURE_IO = {"robovlms_io", "robovlms_io.rotations", "robovlms_io.names", "robovlms_io.instructions"}

# (package or sub-package, forbidden: top-level packages or module prefixes)
RULES = [
    ("robovlms_io", HEAVY | {"robovlms_policy", "robovlms_drivers", "robovlms_twin", "robovlms_demo",
                             "robovlms_training", "rosbags"}),
    ("robovlms_drivers", HEAVY | {"robovlms_policy", "robovlms_twin", "robovlms_demo", "robovlms_training"}),
    ("robovlms_policy", {"mujoco", "robovlms_drivers", "robovlms_twin", "robovlms_demo", "robovlms_training"}),
    ("robovlms_policy.vla", ROS_MODULES | {"robovlms_policy.node", "robovlms_policy.trials",
                                           "robovlms_policy.runtime"}),
    ("robovlms_policy.runtime", ROS_MODULES | HEAVY | {"robovlms_policy.node", "robovlms_policy.trials"}),
    ("robovlms_twin", {"torch", "transformers", "lightning", "robovlms_policy", "robovlms_demo",
                       "robovlms_training"}),
    # CALVIN's dataset reader uses the bridge's one conversion module, never the ROS side of the bridge.
    ("robovlms_training", {"robovlms_policy.node", "robovlms_demo", "robovlms_drivers"}
     | {f"robovlms_calvin.{m}" for m in ("calvin_bridge_node", "calvin_backend", "calvin_cell", "composition",
                                         "protocol", "calvin_eval", "calvin_setup", "sequences")}),
    # A CALVIN user needs neither the twin (mujoco) nor the twin's demo; the model loads in the policy node.
    ("robovlms_calvin", HEAVY | {"robovlms_twin", "robovlms_training", "robovlms_demo.demo", "robovlms_policy.vla"}),
    # Likewise for SimplerEnv (ManiSkill3 brings its own torch, imported by name only in its adapter).
    ("robovlms_simpler", HEAVY | {"robovlms_twin", "robovlms_training", "robovlms_demo.demo", "robovlms_policy.vla",
                                  "robovlms_calvin"}),
]


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in a file (relative imports are resolved)."""
    root = next(root for root in PACKAGES.values() if root in path.parents)
    package = path.relative_to(root.parent).parent.parts  # e.g. ("robovlms_policy", "vla")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def files_of(module_prefix: str) -> list[Path]:
    top = module_prefix.split(".")[0]
    root = PACKAGES[top].joinpath(*module_prefix.split(".")[1:])
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def violates(module: str, forbidden: set[str]) -> bool:
    return any(module == f or module.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize("owner, forbidden", RULES, ids=[r[0] for r in RULES])
def test_import_rules(owner, forbidden):
    broken = []
    for path in files_of(owner):
        for module in imports_of(path):
            if violates(module, forbidden):
                broken.append(f"{path.relative_to(REPO)} imports {module}")
    assert not broken, "\n".join(broken)


def test_vla_core_uses_only_the_pure_shared_modules():
    for path in files_of("robovlms_policy.vla") + files_of("robovlms_policy.runtime"):
        shared = {m for m in imports_of(path) if m.startswith("robovlms_io")}
        assert all(m in PURE_IO or m.rsplit(".", 1)[0] in PURE_IO for m in shared), (path, shared)
    for module in PURE_IO - {"robovlms_io"}:
        path = PACKAGES["robovlms_io"] / f"{module.split('.')[1]}.py"
        assert not {m for m in imports_of(path) if violates(m, ROS_MODULES | HEAVY)}, path


BLOCKER = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ImportError, as if it were not installed
"""


def run_isolated(code: str, blocked: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=blocked) + code], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.ros
def test_the_driver_package_imports_without_simulator_torch_or_policy():
    code = """
import importlib, pkgutil
import robovlms_drivers
for info in pkgutil.walk_packages(robovlms_drivers.__path__, "robovlms_drivers."):
    importlib.import_module(info.name)
from robovlms_drivers.kinova.backend import BackendUnavailable, load_backend
load_backend("kortex")  # the real-arm backend loads (its SDK is imported only when connecting)
try:
    load_backend("sim")
except BackendUnavailable as err:
    print("sim:", err)
print("ok")
"""
    result = run_isolated(code, ["mujoco", "torch", "transformers", "robovlms_twin", "robovlms_policy"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
    assert "backend 'sim' cannot be loaded" in result.stdout


@pytest.mark.ros
def test_the_vla_core_imports_without_ros():
    code = "import robovlms_policy.vla.policy, robovlms_policy.runtime.policy_core; print('ok')"
    result = run_isolated(code, sorted(ROS_MODULES))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
