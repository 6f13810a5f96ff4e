"""Rotation conversions of the suite, numpy only (no rclpy import: the VLA core and the twin use them too).

Conventions: quaternions are (x, y, z, w) as in ROS, rotation vectors are axis * angle in radians (the
shortest rotation, angle in [0, pi]), matrices rotate column vectors.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def quaternion_to_matrix(quaternion_xyzw: Any) -> np.ndarray:
    """Rotation matrix of a quaternion (x, y, z, w); it need not be exactly unit length."""
    q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} is not a rotation")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(matrix: Any) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix (Shepperd's method: stable for every
    rotation, including half turns)."""
    m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > max(m[0, 0], m[1, 1], m[2, 2]):
        s = 2.0 * math.sqrt(1.0 + trace)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        s = 2.0 * math.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] >= m[2, 2]:
        s = 2.0 * math.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 0.0))
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * math.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 0.0))
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def rotvec_to_quaternion(rotvec: Any) -> np.ndarray:
    """Quaternion (x, y, z, w) of a rotation vector."""
    rv = np.asarray(rotvec, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(rv))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    return np.concatenate([rv / angle * math.sin(angle / 2), [math.cos(angle / 2)]])


def quaternion_to_rotvec(quaternion_xyzw: Any) -> np.ndarray:
    """Rotation vector (the shortest rotation) of a quaternion (x, y, z, w)."""
    q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
    q = q / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < 1e-12:
        return np.zeros(3)
    return q[:3] / sin_half * (2.0 * math.atan2(sin_half, q[3]))


def rotvec_to_matrix(rotvec: Any) -> np.ndarray:
    """Rodrigues' formula: rotation vector -> 3x3 matrix."""
    rv = np.asarray(rotvec, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(rv))
    if angle < 1e-12:
        return np.eye(3)
    k = rv / angle
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * skew + (1.0 - math.cos(angle)) * skew @ skew


def matrix_to_rotvec(matrix: Any) -> np.ndarray:
    """3x3 rotation matrix -> rotation vector (through the quaternion: robust near a half turn)."""
    return quaternion_to_rotvec(matrix_to_quaternion(matrix))


def quaternion_multiply(a: Any, b: Any) -> np.ndarray:
    """Hamilton product a * b of quaternions (x, y, z, w)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the z axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_to_matrix(roll_pitch_yaw: Any) -> np.ndarray:
    """Matrix of fixed-axis roll, pitch, yaw (rotate about x, then y, then z of the fixed frame:
    R = Rz(yaw) Ry(pitch) Rx(roll); the convention of pybullet's getQuaternionFromEuler and CALVIN)."""
    roll, pitch, yaw = (float(v) for v in np.asarray(roll_pitch_yaw, dtype=np.float64).reshape(3))
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw),
                              math.sin(yaw))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def matrix_to_euler(matrix: Any) -> np.ndarray:
    """Roll, pitch, yaw (euler_to_matrix's convention) of a rotation matrix; pitch in [-pi/2, pi/2]."""
    m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    pitch = math.asin(max(-1.0, min(1.0, -m[2, 0])))
    if abs(m[2, 0]) < 1.0 - 1e-9:
        return np.array([math.atan2(m[2, 1], m[2, 2]), pitch, math.atan2(m[1, 0], m[0, 0])])
    # Gimbal lock: only roll - yaw (or roll + yaw) is defined; put it all in roll.
    return np.array([math.atan2(-m[1, 2], m[1, 1]), pitch, 0.0])


def wrap_angle(angle: Any) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(angle, dtype=np.float64) + math.pi) % (2 * math.pi) - math.pi
