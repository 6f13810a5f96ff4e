"""Offscreen rendering of the twin's cameras and their pinhole intrinsics."""
from __future__ import annotations

import importlib
import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np

CAMERAS = ("static", "wrist")


def pinhole_intrinsics(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """3x3 camera matrix of a MuJoCo camera: square pixels, focal length from the vertical FOV.

    The principal point uses the ROS/OpenCV convention (pixel centres at integer coordinates).
    """
    focal = 0.5 * height / np.tan(np.radians(fovy_deg) / 2.0)
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def _create_gl_context(width: int, height: int):
    """An offscreen GL context from MUJOCO_GL's backend, else EGL, else OSMesa.

    Chosen here rather than through ``mujoco.Renderer``, whose backend is fixed when mujoco is first
    imported: a process that imported mujoco before this package must still render headless.
    """
    requested = os.environ.get("MUJOCO_GL", "").strip().lower()
    backends = [requested] if requested in ("egl", "osmesa", "glfw") else []
    backends += [b for b in ("egl", "osmesa") if b not in backends]
    errors = []
    for backend in backends:
        try:
            return importlib.import_module(f"mujoco.{backend}").GLContext(width, height)
        except Exception as error:  # noqa: BLE001 - any failure means: try the next backend
            errors.append(f"{backend}: {error}")
    raise RuntimeError("no offscreen OpenGL backend works on this machine (" + "; ".join(errors) + ")")


class OffscreenCameras:
    """Renders named cameras of one model.

    GL contexts belong to the thread that made them current, and ROS executors may call from any
    thread, so every GL call runs on one private worker thread.
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        self.model = model
        self.width = width
        self.height = height
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-render")
        self._gl = None
        try:
            self._worker.submit(self._create).result()
        except mujoco.FatalError as error:
            self._worker.shutdown(wait=False)
            raise RuntimeError(f"offscreen rendering unavailable: {error}") from error

    def _create(self) -> None:
        self._gl = _create_gl_context(self.width, self.height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(self.model, maxgeom=2000)
        # No shadows or reflections (and no MSAA, set in the model): they cost several times the frame
        # rate and add nothing a policy needs.
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)

    def _render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        self._gl.make_current()
        self._camera.fixedcamid = self.model.camera(camera).id
        mujoco.mjv_updateScene(self.model, data, self._option, self._perturb, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        pixels = np.empty((self.height, self.width, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(pixels, None, self._rect, self._context)
        return np.flipud(pixels).copy()  # OpenGL rows run bottom-up

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """RGB uint8 image (height, width, 3) of ``camera``; ``data`` must not change meanwhile."""
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; valid cameras: {', '.join(CAMERAS)}")
        if self._gl is None:
            raise RuntimeError("cameras are closed")
        return self._worker.submit(self._render, data, camera).result()

    def _free(self) -> None:
        self._context.free()
        self._gl.free()
        self._gl = None

    def close(self) -> None:
        if self._gl is not None:
            self._worker.submit(self._free).result()
        self._worker.shutdown(wait=True)
