"""Finding a user's SimplerEnv (or ManiSkill3) install and building the benchmark's envs from it.

Nothing of SimplerEnv is shipped here and every import of it happens in this module. Its renderer (SAPIEN 2 for
ManiSkill2_real2sim, SAPIEN 3 for ManiSkill3) needs a Vulkan GPU: on a CPU machine, where only Mesa's lavapipe
driver exists, SAPIEN finds no rendering device, so the bridge says so before it imports anything.
"""
from __future__ import annotations

import glob
import importlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robovlms_simpler.actions import pose_in_base
from robovlms_simpler.simpler_cell import Observation
from robovlms_simpler.tasks import GOOGLE_ROBOT, ROBOTS, TASKS, WIDOWX, Episode

MANISKILL2, MANISKILL3 = "maniskill2", "maniskill3"
BACKENDS = (MANISKILL2, MANISKILL3)
ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
CPU_VULKAN_DRIVERS = ("lvp", "lavapipe", "swiftshader")  # ICD file names of software Vulkan drivers
DEFAULT_ROBOT_MODEL = {GOOGLE_ROBOT: "google_robot_static", WIDOWX: "widowx"}  # ManiSkill2 agent names

SETUP_STEPS = """SimplerEnv is not set up. Steps (once, on a machine with an NVIDIA GPU and its Vulkan driver):
  git clone https://github.com/simpler-env/SimplerEnv --recurse-submodules ~/SimplerEnv
  .venv/bin/pip install -e ~/SimplerEnv/ManiSkill2_real2sim -e ~/SimplerEnv
(python 3.10/3.11; SAPIEN 2.2.2 comes with it). For the WidowX tasks on ManiSkill3 instead:
  .venv/bin/pip install mani-skill   (then backend:=maniskill3; assets: python -m mani_skill.utils.download_asset bridge_v2_real2sim)
Check the GPU renderer with: vulkaninfo --summary (it must list your GPU, not llvmpipe)."""


class SimplerUnavailable(RuntimeError):
    """SimplerEnv (or its renderer) cannot be used; the message says why and what to do."""


def vulkan_problem(icd_dirs: Sequence[str] = ICD_DIRS, environ: Mapping[str, str] = os.environ) -> str:
    """Why SAPIEN will find no rendering device here ("" when a GPU Vulkan driver is installed)."""
    named = environ.get("VK_ICD_FILENAMES") or environ.get("VK_DRIVER_FILES") or ""
    drivers = [f for f in named.split(os.pathsep) if f] or [f for d in icd_dirs for f in glob.glob(f"{d}/*.json")]
    if not drivers:
        return ("no Vulkan driver is installed (no ICD file in " + ", ".join(icd_dirs) + "): SimplerEnv's renderer "
                "SAPIEN needs a Vulkan GPU (NVIDIA: the driver's nvidia_icd.json)")
    if all(any(cpu in Path(f).name.lower() for cpu in CPU_VULKAN_DRIVERS) for f in drivers):
        return (f"only a CPU Vulkan driver is installed ({', '.join(Path(f).name for f in drivers)}): SAPIEN 2 and 3 "
                "find no rendering device with it; SimplerEnv needs a Vulkan GPU")
    return ""


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise SimplerUnavailable(f"{what} cannot be imported: {error}.\n{SETUP_STEPS}") from error


def _numpy(value: Any) -> np.ndarray:
    """A ManiSkill value (numpy, or a torch tensor with a batch of one in ManiSkill3) as a numpy array."""
    if hasattr(value, "cpu"):
        value = value.cpu().numpy()
    return np.asarray(value)


def _renderer_error(error: Exception) -> SimplerUnavailable:
    return SimplerUnavailable(f"SimplerEnv's renderer did not start ({error}): SAPIEN needs a Vulkan GPU; "
                              f"`vulkaninfo --summary` must list it.\n{SETUP_STEPS}")


class RealToSimEnv:
    """EpisodeEnv on SimplerEnv's ManiSkill2_real2sim, built per episode as SimplerEnv's evaluator builds it."""

    def __init__(self) -> None:
        self.gym = _import("gymnasium", "gymnasium")
        _import("mani_skill2_real2sim.envs", "SimplerEnv's ManiSkill2_real2sim")
        self.assets = Path(_import("mani_skill2_real2sim", "ManiSkill2_real2sim").ASSET_DIR)
        # SimplerEnv's own choice of the benchmark camera's image (overhead / 3rd view by robot).
        self.benchmark_image = _import("simpler_env.utils.env.observation_utils",
                                       "SimplerEnv (simpler_env)").get_image_from_maniskill2_obs_dict
        self._env, self._key, self._task, self._camera = None, None, "", ""

    def _build(self, episode: Episode) -> Any:
        task, build = TASKS[episode.task], episode.build_kwargs()
        robot = ROBOTS[task.robot]
        overlay = self.assets / "real_inpainting" / build.pop("rgb_overlay")
        if not overlay.is_file():
            raise SimplerUnavailable(f"{overlay} is missing: ManiSkill2_real2sim's data/ folder (with "
                                     f"real_inpainting/) must be in the install.\n{SETUP_STEPS}")
        kwargs = {"obs_mode": "rgbd", "robot": build.pop("robot", DEFAULT_ROBOT_MODEL[task.robot]),
                  "sim_freq": robot.sim_freq, "control_mode": robot.control_mode,
                  "control_freq": int(robot.control_freq), "max_episode_steps": task.max_steps,
                  "camera_cfgs": {"add_segmentation": True}, "rgb_overlay_path": str(overlay),
                  "rgb_overlay_cameras": [robot.camera], **build}
        try:
            return self.gym.make(task.env_id, **kwargs)
        except RuntimeError as error:
            raise _renderer_error(error) from error

    def reset(self, episode: Episode) -> Observation:
        key = (TASKS[episode.task].env_id, episode.build)
        if key != self._key:
            self.close()
            self._env, self._key = self._build(episode), key
        self._task, self._camera = episode.task, ROBOTS[TASKS[episode.task].robot].camera
        obs, _ = self._env.reset(options=episode.reset_options())
        return self._observation(obs, False)

    def step(self, action: np.ndarray) -> Observation:
        obs, _, _, _, info = self._env.step(np.asarray(action, np.float64))
        return self._observation(obs, bool(info.get("success", False)))

    def _observation(self, obs: dict, success: bool) -> Observation:
        env, camera = self._env.unwrapped, self._camera
        tcp = obs.get("extra", {}).get("tcp_pose")
        if tcp is None:
            tcp = np.concatenate([env.tcp.pose.p, env.tcp.pose.q])
        position, quaternion = pose_in_base(obs["agent"]["base_pose"], tcp)
        return Observation(
            image=np.ascontiguousarray(self.benchmark_image(env, obs)[..., :3], np.uint8),
            intrinsic=obs.get("camera_param", {}).get(camera, {}).get("intrinsic_cv"),
            tcp_position=position, tcp_quaternion=quaternion,
            joints=np.asarray(obs["agent"]["qpos"], float)[:ROBOTS[TASKS[self._task].robot].arm_joints],
            gripper_closure=_closedness(env.agent), success=success, instruction=str(env.get_language_instruction()))

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self._key = None, None


class ManiSkill3Env:
    """EpisodeEnv on ManiSkill3's digital twins of the Bridge tasks (WidowX), one env per task; batch of one."""

    def __init__(self) -> None:
        self.gym = _import("gymnasium", "gymnasium")
        _import("mani_skill.envs", "ManiSkill3 (mani_skill)")
        self._env, self._task = None, ""

    def reset(self, episode: Episode) -> Observation:
        task = TASKS[episode.task]
        if not task.maniskill3_id:
            raise ValueError(f"{task.name} has no ManiSkill3 version (ManiSkill3 hosts the four WidowX tasks)")
        if task.name != self._task:
            self.close()
            try:
                self._env = self.gym.make(task.maniskill3_id, obs_mode="rgb+segmentation", num_envs=1,
                                          max_episode_steps=task.max_steps)
            except RuntimeError as error:
                raise _renderer_error(error) from error
            self._task = task.name
        torch = _import("torch", "torch (ManiSkill3 needs it)")
        obs, _ = self._env.reset(seed=episode.index, options={"episode_id": torch.tensor([episode.index])})
        return self._observation(obs, False)

    def step(self, action: np.ndarray) -> Observation:
        obs, _, _, _, info = self._env.step(np.asarray(action, np.float32)[None])
        return self._observation(obs, bool(_numpy(info.get("success", False)).reshape(-1)[0]))

    def _observation(self, obs: dict, success: bool) -> Observation:
        env = self._env.unwrapped
        camera = ROBOTS[WIDOWX].camera
        position, quaternion = pose_in_base(_numpy(env.agent.robot.pose.raw_pose)[0],
                                            _numpy(env.agent.tcp.pose.raw_pose)[0])
        intrinsic = obs.get("sensor_param", {}).get(camera, {}).get("intrinsic_cv")
        return Observation(
            image=np.ascontiguousarray(_numpy(obs["sensor_data"][camera]["rgb"])[0][..., :3], np.uint8),
            intrinsic=None if intrinsic is None else _numpy(intrinsic)[0], tcp_position=position,
            tcp_quaternion=quaternion, joints=_numpy(obs["agent"]["qpos"])[0][:ROBOTS[WIDOWX].arm_joints].astype(float),
            gripper_closure=_closedness(env.agent), success=success,
            instruction=str(env.get_language_instruction()[0]))

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self._task = None, ""


def _closedness(agent: Any) -> float:
    """The agent's gripper closedness (0 open .. 1 closed) where it reports one; 0 otherwise."""
    closedness = getattr(agent, "get_gripper_closedness", None)
    return float(np.clip(_numpy(closedness()).reshape(-1)[0], 0.0, 1.0)) if closedness else 0.0


def make_env(robot: str, backend: str = MANISKILL2) -> RealToSimEnv | ManiSkill3Env:
    """The benchmark's env for ``robot`` on ``backend``; SimplerUnavailable says why it cannot be had."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend == MANISKILL3 and robot != WIDOWX:
        raise ValueError("ManiSkill3 hosts only the WidowX (Bridge) tasks; use backend maniskill2 for Google Robot")
    problem = vulkan_problem()
    if problem:
        raise SimplerUnavailable(f"{problem}.\n{SETUP_STEPS}")
    return RealToSimEnv() if backend == MANISKILL2 else ManiSkill3Env()
