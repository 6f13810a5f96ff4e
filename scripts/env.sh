# Source this file (bash) to use the suite from a shell: `source scripts/env.sh`.
# It activates .venv and overlays the colcon install space (robovlms_msgs and the suite's executables).
_robovlms_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$_robovlms_root/ros2_ws/install/setup.bash" ]]; then
  echo "scripts/env.sh: the workspace is not built yet: run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# colcon's setup scripts read unset variables; relax nounset while sourcing them.
_robovlms_nounset=""
if [[ $- == *u* ]]; then _robovlms_nounset=1; fi
set +u
if [[ -n "${ROS_DISTRO:-}" && -f "/opt/ros/$ROS_DISTRO/setup.bash" ]]; then
  source "/opt/ros/$ROS_DISTRO/setup.bash"
fi
source "$_robovlms_root/.venv/bin/activate"
source "$_robovlms_root/ros2_ws/install/setup.bash"
if [[ -n "$_robovlms_nounset" ]]; then set -u; fi
# The suite's executables (what `ros2 run <package> <executable>` would start) go on PATH, since ros2cli is
# not available from PyPI: policy_node, kinova_driver, twin_bridge, robovlms-init-checkpoint, ...
for _robovlms_bin in "$_robovlms_root"/ros2_ws/install/*/lib/robovlms_*; do
  if [[ -d "$_robovlms_bin" && ":$PATH:" != *":$_robovlms_bin:"* ]]; then PATH="$_robovlms_bin:$PATH"; fi
done
export PATH
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
unset _robovlms_root _robovlms_nounset _robovlms_bin
