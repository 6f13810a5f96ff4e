"""SimplerEnv's visual-matching tasks and their episode sets, as SimplerEnv's own evaluation scripts define them
(scripts/*_visual_matching.sh and scripts/*_bridge.sh of simpler-env/SimplerEnv). No SimplerEnv import here.

A task is one of SimplerEnv's task names (``simpler_env.ENVIRONMENTS``) with the ManiSkill2_real2sim env behind
it; an episode is one entry of the task's set: the env's build arguments (scene, real-image overlay, robot
URDF variant) and its reset options (robot base pose, object placement). Episode index i of a task is always
the same episode, so shards and reruns compare like with like.

Sets: pick coke can (each orientation) 5 x 5 can positions x 4 URDF variants = 100; move near 60 object
configurations x 4 = 240; each drawer task 9 robot poses (each with its overlay) x 4 = 36; apple into the
closed top drawer 3 poses x 3 x 3 apple positions x 4 = 108; each WidowX task the 24 configurations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

GOOGLE_ROBOT, WIDOWX = "google_robot", "widowx"
RELATIVE_GRIPPER, ABSOLUTE_GRIPPER = "relative", "absolute"
URDF_VARIANTS = ("", "recolor_tabletop_visual_matching_1", "recolor_tabletop_visual_matching_2",
                 "recolor_cabinet_visual_matching_1")
BASE_QUAT_WXYZ = (0.0, 0.0, 0.0, 1.0)  # the scripts' --robot-init-rot-quat-center


@dataclass(frozen=True)
class Robot:
    """A SimplerEnv embodiment: its controller, rates and the camera the benchmark's policies see."""

    name: str
    control_freq: float  # Hz: one policy action per env step
    sim_freq: int
    control_mode: str
    camera: str  # simpler_env.utils.env.observation_utils.get_image_from_maniskill2_obs_dict's choice
    gripper: str  # RELATIVE_GRIPPER (+1 close / -1 open / 0 hold) or ABSOLUTE_GRIPPER (+1 open / -1 close)
    arm_joints: int  # leading entries of the agent's qpos that are arm joints (fingers, head follow)


ROBOTS = {
    GOOGLE_ROBOT: Robot(GOOGLE_ROBOT, 3.0, 513, "arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_"
                        "target_delta_pos_interpolate_by_planner", "overhead_camera", RELATIVE_GRIPPER, 7),
    WIDOWX: Robot(WIDOWX, 5.0, 500, "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos", "3rd_view_camera",
                  ABSOLUTE_GRIPPER, 6),
}


@dataclass(frozen=True)
class Episode:
    """One episode of a task's set. ``build`` (sorted key/value pairs) are env construction arguments: the env
    is rebuilt when they change between episodes; ``robot_xy``/``robot_quat`` (w, x, y, z) place the robot base;
    ``objects`` is ("xy", (x, y)) or ("episode", id), SimplerEnv's two object variation modes."""

    task: str
    index: int
    variant: str  # the report's setting: which URDF / overlay variant this episode renders
    build: tuple[tuple[str, Any], ...]
    robot_xy: tuple[float, float]
    robot_quat: tuple[float, float, float, float]
    objects: tuple[str, Any]

    def build_kwargs(self) -> dict:
        return dict(self.build)

    def reset_options(self) -> dict:
        """env.reset(options=...) as SimplerEnv's evaluator passes them."""
        mode, value = self.objects
        objects = {"init_xy": np.array(value, float)} if mode == "xy" else {"episode_id": int(value)}
        return {"robot_init_options": {"init_xy": np.array(self.robot_xy, float),
                                       "init_rot_quat": np.array(self.robot_quat, float)},
                "obj_init_options": objects}


@dataclass(frozen=True)
class Task:
    name: str  # SimplerEnv's task name
    robot: str
    env_id: str  # ManiSkill2_real2sim env id
    max_steps: int
    episodes: Callable[["Task"], list[Episode]]
    maniskill3_id: str = ""  # the same task in ManiSkill3 (mani_skill), where it exists

    def episode(self, index: int) -> Episode:
        episodes = self.episodes(self)
        if not 0 <= index < len(episodes):
            raise ValueError(f"{self.name} has episodes 0..{len(episodes) - 1}; got {index}")
        return episodes[index]

    @property
    def episode_count(self) -> int:
        return len(self.episodes(self))


def robot_quat(yaw: float) -> tuple[float, float, float, float]:
    """The scripts' robot orientation: Pose(q=euler2quat(0, 0, yaw)) * Pose(q=BASE_QUAT_WXYZ), as (w, x, y, z)."""
    w1, z1 = math.cos(yaw / 2), math.sin(yaw / 2)
    w2, x2, y2, z2 = BASE_QUAT_WXYZ
    return (w1 * w2 - z1 * z2, w1 * x2 - z1 * y2, w1 * y2 + z1 * x2, w1 * z2 + z1 * w2)


def _build(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kwargs.items()))


def _variant(urdf: str, overlay: str = "") -> str:
    name = urdf.replace("recolor_", "").replace("_visual_matching", "") or "base"
    return f"{name}/{overlay}" if overlay else name


def _grid(low: float, high: float, count: int) -> list[float]:
    return [float(v) for v in np.linspace(low, high, count)]


def _coke_can(orientation: str) -> Callable[[Task], list[Episode]]:
    def episodes(task: Task) -> list[Episode]:
        return [Episode(task.name, i, _variant(urdf), _build(
                    scene_name="google_pick_coke_can_1_v4", rgb_overlay="google_coke_can_real_eval_1.png",
                    urdf_version=urdf, **{orientation: True}), (0.35, 0.20), BASE_QUAT_WXYZ, ("xy", (x, y)))
                for i, (urdf, x, y) in enumerate((u, x, y) for u in URDF_VARIANTS for x in _grid(-0.35, -0.12, 5)
                                                 for y in _grid(-0.02, 0.42, 5))]
    return episodes


def _move_near(task: Task) -> list[Episode]:
    return [Episode(task.name, i, _variant(urdf), _build(
                scene_name="google_pick_coke_can_1_v4", rgb_overlay="google_move_near_real_eval_1.png",
                urdf_version=urdf), (0.35, 0.21), robot_quat(-0.09), ("episode", configuration))
            for i, (urdf, configuration) in enumerate((u, c) for u in URDF_VARIANTS for c in range(60))]


# (x, y, yaw, overlay) of the drawer scripts' robot poses; the apple task uses a0, b0 and c0.
DRAWER_POSES = (
    (0.644, -0.179, -0.03, "open_drawer_a0.png"), (0.765, -0.182, -0.02, "open_drawer_a1.png"),
    (0.889, -0.203, -0.06, "open_drawer_a2.png"), (0.652, 0.009, 0.0, "open_drawer_b0.png"),
    (0.752, 0.009, 0.0, "open_drawer_b1.png"), (0.851, 0.035, 0.0, "open_drawer_b2.png"),
    (0.665, 0.224, 0.0, "open_drawer_c0.png"), (0.765, 0.222, -0.025, "open_drawer_c1.png"),
    (0.865, 0.222, -0.025, "open_drawer_c2.png"),
)
# The drawer scripts' --enable-raytracing and --additional-env-build-kwargs.
DRAWER_SCENE = {"scene_name": "dummy_drawer", "shader_dir": "rt", "station_name": "mk_station_recolor",
                "light_mode": "simple", "disable_bad_material": True}


def _drawer(task: Task) -> list[Episode]:
    return [Episode(task.name, i, _variant(urdf, overlay[len("open_drawer_"):-4]),
                    _build(rgb_overlay=overlay, urdf_version=urdf, **DRAWER_SCENE), (x, y), robot_quat(yaw),
                    ("xy", (0.0, 0.0)))
            for i, (urdf, (x, y, yaw, overlay)) in enumerate((u, p) for u in URDF_VARIANTS for p in DRAWER_POSES)]


def _apple_in_drawer(task: Task) -> list[Episode]:
    poses = [p for p in DRAWER_POSES if p[3].endswith("0.png")]
    return [Episode(task.name, i, _variant(urdf, overlay[len("open_drawer_"):-4]),
                    _build(rgb_overlay=overlay, urdf_version=urdf, model_ids="baked_apple_v2", **DRAWER_SCENE),
                    (x, y), robot_quat(yaw), ("xy", (ox, oy)))
            for i, (urdf, (x, y, yaw, overlay), ox, oy) in enumerate(
                (u, p, ox, oy) for u in URDF_VARIANTS for p in poses for ox in _grid(-0.08, -0.02, 3)
                for oy in _grid(-0.02, 0.08, 3))]


def _bridge(robot: str = "widowx", scene: str = "bridge_table_1_v1", overlay: str = "bridge_real_eval_1.png",
            xy: tuple[float, float] = (0.147, 0.028)) -> Callable[[Task], list[Episode]]:
    def episodes(task: Task) -> list[Episode]:
        return [Episode(task.name, i, "visual_matching", _build(robot=robot, scene_name=scene, rgb_overlay=overlay),
                        xy, BASE_QUAT_WXYZ, ("episode", i)) for i in range(24)]
    return episodes


_TASKS = [
    Task("google_robot_pick_horizontal_coke_can", GOOGLE_ROBOT, "GraspSingleOpenedCokeCanInScene-v0", 80,
         _coke_can("lr_switch")),
    Task("google_robot_pick_vertical_coke_can", GOOGLE_ROBOT, "GraspSingleOpenedCokeCanInScene-v0", 80,
         _coke_can("laid_vertically")),
    Task("google_robot_pick_standing_coke_can", GOOGLE_ROBOT, "GraspSingleOpenedCokeCanInScene-v0", 80,
         _coke_can("upright")),
    Task("google_robot_move_near", GOOGLE_ROBOT, "MoveNearGoogleBakedTexInScene-v0", 80, _move_near),
    *[Task(f"google_robot_{verb}_{drawer}_drawer", GOOGLE_ROBOT,
           f"{verb.capitalize()}{drawer.capitalize()}DrawerCustomInScene-v0", 113, _drawer)
      for verb in ("open", "close") for drawer in ("top", "middle", "bottom")],
    Task("google_robot_place_apple_in_closed_top_drawer", GOOGLE_ROBOT, "PlaceIntoClosedTopDrawerCustomInScene-v0",
         200, _apple_in_drawer),
    Task("widowx_spoon_on_towel", WIDOWX, "PutSpoonOnTableClothInScene-v0", 60, _bridge(),
         "PutSpoonOnTableClothInScene-v1"),
    Task("widowx_carrot_on_plate", WIDOWX, "PutCarrotOnPlateInScene-v0", 60, _bridge(), "PutCarrotOnPlateInScene-v1"),
    Task("widowx_stack_cube", WIDOWX, "StackGreenCubeOnYellowCubeBakedTexInScene-v0", 60, _bridge(),
         "StackGreenCubeOnYellowCubeBakedTexInScene-v1"),
    Task("widowx_put_eggplant_in_basket", WIDOWX, "PutEggplantInBasketScene-v0", 120,
         _bridge("widowx_sink_camera_setup", "bridge_table_1_v2", "bridge_sink.png", (0.127, 0.06)),
         "PutEggplantInBasketScene-v1"),
]
TASKS: dict[str, Task] = {task.name: task for task in _TASKS}


def tasks_of(robot: str) -> list[str]:
    return [name for name, task in TASKS.items() if task.robot == robot]


def select_tasks(names: str, robot: str) -> list[Task]:
    """Comma-separated task names (empty: every task of ``robot``); all of one robot (their rates differ)."""
    chosen = [n.strip() for n in names.split(",") if n.strip()] or tasks_of(robot)
    unknown = [n for n in chosen if n not in TASKS]
    if unknown:
        raise ValueError(f"unknown SimplerEnv task(s) {unknown}; known: {', '.join(TASKS)}")
    other = [n for n in chosen if TASKS[n].robot != robot]
    if other:
        raise ValueError(f"{other} are not {robot} tasks: run each robot's tasks separately (its own checkpoint "
                         f"and control rate, {ROBOTS[robot].control_freq:g} Hz here)")
    return [TASKS[n] for n in chosen]
