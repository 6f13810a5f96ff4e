"""KinovaCell: the simulated cell (arm, gripper, table tasks, cameras) behind one small API.

Arm control mirrors the real driver's twist interface: a commanded end-effector velocity (base
frame) is integrated into a target TCP pose, damped-least-squares IK turns the target into joint
set-points at ``ik_period``, and stiff joint servos (gravity-compensated links) track them.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robovlms_io.names import ARM_JOINTS, KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import matrix_to_quaternion, rotvec_to_matrix, yaw_matrix
from robovlms_twin.cameras import OffscreenCameras, pinhole_intrinsics
from robovlms_twin.experts import Action, ExpertView, expert_action
from robovlms_twin.kinematics import TOOL_DOWN, DifferentialIK, IKConfig
from robovlms_twin.model_builder import FINGER_TRAVEL, STATIC_CAMERA, WRIST_CAMERA_FOVY_DEG, build_mjcf
from robovlms_twin.scene import SceneState
from robovlms_twin.tasks import TASKS, VARIATIONS, check_request, lay_out

# Kinova's "Home" posture; the IK rest posture is derived from it.
KINOVA_HOME = np.radians([0.0, 15.0, 180.0, -130.0, 0.0, 55.0, 90.0])


@dataclass
class CellConfig:
    """Simulation, control and camera settings of the twin."""

    image_size: int = 224  # square images unless image_width / image_height are given
    image_width: int | None = None
    image_height: int | None = None
    control_period: float = 0.1  # s, one policy action
    timestep: float = 0.002  # s, physics
    ik_period: float = 0.01  # s between IK updates (must be a multiple of timestep)
    max_linear_speed: float = 0.6  # m/s, commands beyond are scaled down
    max_angular_speed: float = 3.0  # rad/s
    max_tracking_error: float = 0.04  # m the target may lead the real TCP (no wind-up against contacts)
    settle_time: float = 0.3  # s of physics after a reset so objects come to rest
    start_position: tuple[float, float, float] = (0.42, 0.0, 0.22)  # nominal TCP at episode start
    start_jitter: float = 0.03  # m, uniform per axis
    start_yaw_jitter: float = 0.15  # rad, uniform
    # Training-time randomisation within the seen settings (0 = off, the evaluation default): each episode
    # scales the sun's and the headlight's intensity by a factor drawn from [1 - light_jitter, 1 + light_jitter].
    light_jitter: float = 0.0
    ik: IKConfig = field(default_factory=IKConfig)

    @property
    def width(self) -> int:
        return self.image_width or self.image_size

    @property
    def height(self) -> int:
        return self.image_height or self.image_size


@dataclass(frozen=True)
class EpisodeSpec:
    """An episode as started by :meth:`KinovaCell.reset`."""

    task: str
    instruction: str
    seed: int
    variation: str


def _finite_vector(value, name: str, size: int = 3) -> np.ndarray:
    array = np.asarray(value, dtype=float).reshape(-1)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be {size} finite numbers, got {value!r}")
    return array


def _finite_scalar(value, name: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


class KinovaCell:
    """The MuJoCo twin. Not thread-safe by itself: callers sharing it hold :attr:`lock`."""

    def __init__(self, config: CellConfig | None = None):
        self.config = config or CellConfig()
        cfg = self.config
        if cfg.width <= 0 or cfg.height <= 0:
            raise ValueError(f"image size must be positive, got {cfg.width}x{cfg.height}")
        self.lock = threading.RLock()
        self.last_step_duration = 0.0  # s of physics the latest step() advanced (whoever steps the cell)
        self.model = mujoco.MjModel.from_xml_string(
            build_mjcf(offscreen_size=max(cfg.width, cfg.height, 640), timestep=cfg.timestep))
        self.data = mujoco.MjData(self.model)
        self.scene = SceneState(self.model, self.data)
        self.ik = DifferentialIK(self.model, "tcp", ARM_JOINTS, cfg.ik)
        self._ik_substeps = max(1, round(cfg.ik_period / cfg.timestep))
        self._arm_qpos = self.ik.qpos_idx
        self._arm_ctrl = np.array([self.model.actuator(j).id for j in ARM_JOINTS])
        self._gripper_ctrl = self.model.actuator("gripper").id
        self._finger_qpos = self.model.joint("left_finger_joint").qposadr[0]
        self._tcp = self.model.site("tcp").id
        self._default_rgba = self.model.geom_rgba.copy()
        self._default_light = (self.model.light_diffuse.copy(), self.model.vis.headlight.ambient.copy(),
                               self.model.vis.headlight.diffuse.copy())
        start = np.asarray(cfg.start_position, dtype=float)
        self.rest_posture = self.ik.solve(KINOVA_HOME, start, TOOL_DOWN)
        self._cameras: OffscreenCameras | None = None
        self.episode: EpisodeSpec | None = None
        self.reset_count = 0  # episodes started; lets co-users (the sim backend) notice a reset
        self._hold(self.rest_posture)

    # --- episodes ------------------------------------------------------------------------------
    @property
    def task_names(self) -> list[str]:
        return list(TASKS)

    @property
    def variations(self) -> list[str]:
        return list(VARIATIONS)

    def reset(self, task: str, seed: int, variation: str = "default") -> EpisodeSpec:
        """Start a seeded, randomised episode; ValueError (listing valid names) on unknown task/variation."""
        check_request(task, variation)
        rng = np.random.default_rng(int(seed))
        mujoco.mj_resetData(self.model, self.data)
        self.model.geom_rgba[:] = self._default_rgba
        instruction = lay_out(self.scene, TASKS[task], variation, rng)
        start = np.asarray(self.config.start_position) + rng.uniform(-1, 1, 3) * self.config.start_jitter
        orientation = yaw_matrix(rng.uniform(-1, 1) * self.config.start_yaw_jitter) @ TOOL_DOWN
        self._set_lighting(rng)
        q = self.ik.solve(self.rest_posture, start, orientation, self.rest_posture)
        self._hold(q)
        self.set_gripper(0.0)
        mujoco.mj_forward(self.model, self.data)
        self.step(self.config.settle_time)
        self.scene.initial = {name: self.scene.body_position(name)
                              for name in ("red_block", "blue_block", "green_block")}
        self.episode = EpisodeSpec(task, instruction, int(seed), variation)
        self.reset_count += 1
        return self.episode

    def success(self) -> bool:
        """Task oracle on the current simulator state (False before the first reset)."""
        return self.episode is not None and bool(TASKS[self.episode.task].success(self.scene))

    def expert_action(self) -> Action:
        """The scripted expert's (delta_position, delta_rotation, gripper) for the next control period, from
        the current state alone (so it also labels states a policy drove the cell into)."""
        if self.episode is None:
            raise RuntimeError("expert_action() needs an episode: call reset() first")
        return expert_action(self.episode.task, self.expert_view(), self.success())

    def expert_view(self) -> ExpertView:
        position, matrix = self._tcp_pose()
        return ExpertView(self.scene, position, matrix, self.finger_closure(), self.commanded_closure)

    # --- commands ------------------------------------------------------------------------------
    def set_ee_velocity(self, linear, angular) -> None:
        """Hold a TCP twist (base frame, m/s and rad/s) until changed; too fast is scaled down."""
        linear = _finite_vector(linear, "linear velocity")
        angular = _finite_vector(angular, "angular velocity")
        speed, turn = np.linalg.norm(linear), np.linalg.norm(angular)
        if speed > self.config.max_linear_speed:
            linear = linear * (self.config.max_linear_speed / speed)
        if turn > self.config.max_angular_speed:
            angular = angular * (self.config.max_angular_speed / turn)
        self._linear, self._angular, self._expiry, self._twist_time = linear, angular, None, 0.0

    def commanded_twist(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The TCP twist in force (after the speed limits) and the seconds of physics it has moved the target
        since it was set, so a commander on another clock can tell how much of it was executed."""
        return self._linear.copy(), self._angular.copy(), self._twist_time

    def shift_target(self, delta_position, delta_rotation) -> None:
        """Move the TCP target by a base-frame displacement (m, rotation vector in rad) at once; physics
        tracks it from the next step. Lets a commander on another clock (the driver's sim backend) make up
        for twist time its clock and physics disagree on."""
        delta_position = _finite_vector(delta_position, "delta_position")
        delta_rotation = _finite_vector(delta_rotation, "delta_rotation")
        self._target_pos = self._target_pos + delta_position
        self._target_mat = rotvec_to_matrix(delta_rotation) @ self._target_mat

    @property
    def commanded_closure(self) -> float:
        """The gripper command in force, 0 open .. 1 closed."""
        return self._closure

    def set_gripper(self, closure: float) -> None:
        """0 = open .. 1 = closed (clipped)."""
        self._closure = float(np.clip(_finite_scalar(closure, "gripper closure"), 0.0, 1.0))

    def stop(self) -> None:
        self._linear, self._angular, self._expiry, self._twist_time = np.zeros(3), np.zeros(3), None, 0.0

    def apply_delta(self, delta_position, delta_rotation, gripper: float, period: float) -> None:
        """Move by a delta over ``period`` seconds of simulated time, then stop.

        Does not advance physics: whoever owns stepping (the bridge, or :meth:`act`) does.
        """
        period = _finite_scalar(period, "period")
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.set_ee_velocity(_finite_vector(delta_position, "delta_position") / period,
                             _finite_vector(delta_rotation, "delta_rotation") / period)
        self.set_gripper(gripper)
        self._expiry = self.data.time + period

    def act(self, delta_position, delta_rotation, gripper: float) -> None:
        """Apply one control-period delta and advance physics by that period (for rollouts)."""
        self.apply_delta(delta_position, delta_rotation, gripper, self.config.control_period)
        self.step(self.config.control_period)

    def step(self, duration: float) -> None:
        """Advance physics by ``duration`` s, tracking the commanded TCP velocity."""
        substeps = max(0, round(_finite_scalar(duration, "duration") / self.model.opt.timestep))
        self.last_step_duration = substeps * self.model.opt.timestep
        while substeps > 0:
            chunk = min(self._ik_substeps, substeps)
            self._update_controller(chunk * self.model.opt.timestep)
            mujoco.mj_step(self.model, self.data, nstep=chunk)
            self.scene.update_light()
            substeps -= chunk

    # --- state ---------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._arm_qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.ik.dof_idx].copy()

    def finger_closure(self) -> float:
        """Measured finger travel, 0 open .. 1 fully closed."""
        return float(self.data.qpos[self._finger_qpos] / FINGER_TRAVEL)

    def gripper_joint_position(self) -> float:
        """robotiq_85_left_knuckle_joint equivalent: 0 open .. 0.8 rad closed."""
        return float(self.data.qpos[self._finger_qpos] / FINGER_TRAVEL * KNUCKLE_CLOSED_RAD)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (m) and orientation quaternion (x, y, z, w) in base_link."""
        pos, mat = self._tcp_pose()
        return pos, matrix_to_quaternion(mat)

    @property
    def sim_time(self) -> float:
        return float(self.data.time)

    # --- cameras -------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """RGB uint8 (H, W, 3) image of "static" (Kinect) or "wrist" (RealSense)."""
        if self._cameras is None:
            self._cameras = OffscreenCameras(self.model, self.config.width, self.config.height)
        return self._cameras.render(self.data, camera)

    def camera_matrix(self, camera: str) -> np.ndarray:
        """3x3 intrinsics of a rendered camera at the configured image size."""
        fovy = {"static": STATIC_CAMERA.fovy_deg, "wrist": WRIST_CAMERA_FOVY_DEG}.get(camera)
        if fovy is None:
            raise ValueError(f"unknown camera {camera!r}; valid cameras: static, wrist")
        return pinhole_intrinsics(fovy, self.config.width, self.config.height)

    def close(self) -> None:
        """Release the GL context (the cell stays usable; rendering re-creates it)."""
        if self._cameras is not None:
            self._cameras.close()
            self._cameras = None

    # --- internals -----------------------------------------------------------------------------
    def _set_lighting(self, rng: np.random.Generator) -> None:
        sun, ambient, diffuse = self._default_light
        jitter = self.config.light_jitter
        scale = rng.uniform(1 - jitter, 1 + jitter, 2) if jitter > 0 else np.ones(2)
        self.model.light_diffuse[:] = sun * scale[0]
        self.model.vis.headlight.ambient[:] = ambient * scale[1]
        self.model.vis.headlight.diffuse[:] = diffuse * scale[1]

    def _tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.site_xpos[self._tcp].copy(), self.data.site_xmat[self._tcp].reshape(3, 3).copy()

    def _hold(self, q: np.ndarray) -> None:
        """Put the arm at ``q`` at rest and make its pose the target."""
        self.data.qpos[self._arm_qpos] = q
        self.data.qvel[self.ik.dof_idx] = 0.0
        self._q_target = np.array(q, dtype=float)
        self._target_pos, self._target_mat = self.ik.forward(q)
        self.data.ctrl[self._arm_ctrl] = q
        self.stop()
        self._closure = 0.0

    def _update_controller(self, dt: float) -> None:
        """Integrate the commanded twist into the target pose and one IK step into joint set-points."""
        active = dt if self._expiry is None else float(np.clip(self._expiry - self.data.time, 0.0, dt))
        if active > 0.0:
            self._target_pos = self._target_pos + self._linear * active
            self._target_mat = rotvec_to_matrix(self._angular * active) @ self._target_mat
            self._twist_time += active
        if self._expiry is not None and self.data.time + dt >= self._expiry - 1e-9:
            self.stop()
        lead = self._target_pos - self.data.site_xpos[self._tcp]
        if np.linalg.norm(lead) > self.config.max_tracking_error:
            lead *= self.config.max_tracking_error / np.linalg.norm(lead)
            self._target_pos = self.data.site_xpos[self._tcp] + lead
        self._q_target = self.ik.step(self._q_target, self._target_pos, self._target_mat, self.rest_posture)
        self.data.ctrl[self._arm_ctrl] = self._q_target
        self.data.ctrl[self._gripper_ctrl] = self._closure * FINGER_TRAVEL
