"""Twin cameras: offscreen rendering and CameraInfo intrinsics that really project scene points."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from robovlms_twin.cameras import pinhole_intrinsics
from robovlms_twin.cell import CellConfig, KinovaCell


@pytest.fixture(scope="module")
def cell():
    cell = KinovaCell(CellConfig(image_width=160, image_height=120))
    yield cell
    cell.close()


def project(cell: KinovaCell, camera: str, point: np.ndarray) -> tuple[int, int]:
    """Pixel (column, row) of a world point, through the published intrinsics."""
    cam = cell.model.camera(camera).id
    position, rotation = cell.data.cam_xpos[cam], cell.data.cam_xmat[cam].reshape(3, 3)
    local = rotation.T @ (point - position)  # MuJoCo camera: x right, y up, looking along -z
    k = cell.camera_matrix(camera)
    depth = -local[2]
    return round(k[0, 0] * local[0] / depth + k[0, 2]), round(-k[1, 1] * local[1] / depth + k[1, 2])


def is_red(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return r > 100 and r > g + 60 and r > b + 60


def test_images_have_configured_size_and_content(cell):
    cell.reset("lift_red_block", 0)
    for camera in ("static", "wrist"):
        image = cell.render(camera)
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8
        assert image.std() > 10, f"{camera} image is blank"


def test_intrinsics_follow_the_vertical_field_of_view():
    k = pinhole_intrinsics(90.0, 200, 100)
    np.testing.assert_allclose(k, [[50.0, 0.0, 99.5], [0.0, 50.0, 49.5], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_static_camera_intrinsics_project_the_red_block_onto_red_pixels(cell, seed):
    cell.reset("lift_red_block", seed)
    column, row = project(cell, "static", cell.scene.body_position("red_block"))
    image = cell.render("static")
    assert 0 <= row < 120 and 0 <= column < 160
    assert is_red(image[row, column])
    far_column = (column + 60) % 160  # sanity: the test would notice a wrong projection
    assert not all(is_red(image[r, far_column]) for r in range(max(0, row - 2), min(120, row + 3)))


def test_wrist_camera_intrinsics_project_a_block_below_the_camera(cell):
    cell.reset("lift_red_block", 0)
    cam = cell.model.camera("wrist").id
    spot = cell.data.cam_xpos[cam][:2] + (0.0, 0.03)
    cell.scene.set_free_body("red_block", spot, 0.0)
    cell.step(0.05)
    column, row = project(cell, "wrist", cell.scene.body_position("red_block") + (0, 0, 0.02))
    image = cell.render("wrist")
    assert is_red(image[row, column])


def test_unknown_camera_is_rejected(cell):
    with pytest.raises(ValueError, match="valid cameras: static, wrist"):
        cell.render("thermal")
    with pytest.raises(ValueError, match="valid cameras"):
        cell.camera_matrix("thermal")


def test_rendering_from_several_threads(cell):
    """ROS executors call from arbitrary threads; the GL context must follow."""
    cell.reset("press_button", 0)
    results = []

    def grab():
        with cell.lock:
            results.append(cell.render("static"))

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    main = cell.render("static")
    assert len(results) == 3 and all(np.array_equal(r, main) for r in results)
