"""robovlms_io.rotations: round trips, composition, and agreement with MuJoCo's own conversions (the twin used
those before)."""
from __future__ import annotations

import math

import mujoco
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robovlms_io.rotations import (
    matrix_to_quaternion,
    matrix_to_rotvec,
    quaternion_multiply,
    quaternion_to_matrix,
    quaternion_to_rotvec,
    rotvec_to_matrix,
    rotvec_to_quaternion,
)

finite = st.floats(-1.0, 1.0, allow_nan=False)
vectors = st.tuples(finite, finite, finite).map(np.array)


def tool_to_base(v, q):
    return quaternion_to_matrix(q) @ np.asarray(v, float)


def base_to_tool(v, q):
    return quaternion_to_matrix(q).T @ np.asarray(v, float)


@settings(max_examples=50)
@given(vectors, vectors)
def test_tool_base_round_trip(v, rotation):
    q = rotvec_to_quaternion(rotation * 3)
    np.testing.assert_allclose(base_to_tool(tool_to_base(v, q), q), v, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(tool_to_base(v, q)), np.linalg.norm(v), atol=1e-9)


@settings(max_examples=50)
@given(vectors)
def test_rotation_vector_quaternion_round_trip(rotation):
    rv = rotation * 3.0  # up to ~5.2 rad norm; compare as rotations (shortest representation)
    q = rotvec_to_quaternion(rv)
    np.testing.assert_allclose(quaternion_to_matrix(rotvec_to_quaternion(
        quaternion_to_rotvec(q))), quaternion_to_matrix(q), atol=1e-9)


def test_tool_frame_rotation_composes_on_the_right():
    """A tool-frame rotation vector r, turned into base angular velocity w, gives R_new = exp(w) R = R exp(r)."""
    q_ee = rotvec_to_quaternion([0.3, -0.2, 1.0])
    r_tool = np.array([0.05, 0.02, -0.04])
    w_base = tool_to_base(r_tool, q_ee)
    left = quaternion_multiply(rotvec_to_quaternion(w_base), q_ee)
    right = quaternion_multiply(q_ee, rotvec_to_quaternion(r_tool))
    np.testing.assert_allclose(quaternion_to_matrix(left), quaternion_to_matrix(right), atol=1e-12)




@settings(max_examples=100)
@given(vectors)
def test_matrix_conversions_match_mujoco(rotation):
    rv = rotation * 3.0
    matrix = rotvec_to_matrix(rv)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, matrix.ravel())
    if quat[0] < 0:
        quat = -quat
    np.testing.assert_allclose(matrix_to_quaternion(matrix), [quat[1], quat[2], quat[3], quat[0]], atol=1e-9)
    expected = np.empty(3)
    mujoco.mju_quat2Vel(expected, quat, 1.0)
    np.testing.assert_allclose(matrix_to_rotvec(matrix), expected, atol=1e-9)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(matrix)), matrix, atol=1e-9)


def test_half_turns_convert_exactly():
    for axis in np.eye(3):
        matrix = rotvec_to_matrix(axis * math.pi)
        np.testing.assert_allclose(rotvec_to_matrix(matrix_to_rotvec(matrix)), matrix, atol=1e-9)
        assert abs(np.linalg.norm(matrix_to_rotvec(matrix)) - math.pi) < 1e-9
