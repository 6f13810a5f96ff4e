"""Policy forward passes on a thread of their own, so the control tick never waits for the model.

Observations arrive as frames the node has already checked (ValidatedFrame: the message's pixel view) and
are converted to RGB here, before the forward pass, so the image copies stay off the control thread too. The
worker holds at most one pending observation (the newest wins); results computed for an instruction that has
since been replaced are discarded. The chunk strategy is only touched under the worker's lock, from the worker
thread (submit) and from the control tick (action_for).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from robovlms_io.images import pixels_to_rgb
from robovlms_policy.runtime.chunk_strategies import ChunkStrategy

INFERENCE_NICENESS = 10


class StepPolicy(Protocol):
    """What the worker needs from a policy (robovlms_policy.vla.policy.VLAPolicy satisfies it)."""

    def reset(self, instruction: str) -> None: ...

    def step(self, images: dict[str, np.ndarray], proprio: np.ndarray | None = None): ...


@dataclass(frozen=True)
class ValidatedFrame:
    """A camera frame whose message passed check_image_msg: its (H, W, channels) pixel view, encoding and the
    message's header stamp (carried into the chunk, so recordings identify each chunk's inputs)."""

    pixels: np.ndarray
    encoding: str
    stamp: object = None  # builtin_interfaces/Time


@dataclass
class ChunkResult:
    """A finished forward pass: the chunk in command units, the tick of the observation it used and the header
    stamps of that observation's frames (camera name -> Time)."""

    arm: np.ndarray
    gripper: np.ndarray
    tick: int
    latency_s: float
    frame_stamps: dict = None


class InferenceWorker:
    """Runs ``policy.step`` off the executor thread and feeds the chunks to a chunk strategy."""

    def __init__(self, policy: StepPolicy, strategy: ChunkStrategy,
                 on_chunk: Callable[[ChunkResult], None], on_error: Callable[[str], None]) -> None:
        self._policy = policy
        self._strategy = strategy
        self._on_chunk = on_chunk
        self._on_error = on_error
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._request: tuple[int, int, dict[str, ValidatedFrame], np.ndarray | None] | None = None
        self._pending_instruction: str | None = None
        self._epoch = 0
        self._busy = False
        self._stopping = False
        self.latency_s = 0.0
        self._thread = threading.Thread(target=self._run, name="policy-inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def set_instruction(self, instruction: str) -> None:
        """Start a new episode: forget queued work and chunks; the policy is reset before its next step."""
        with self._wake:
            self._epoch += 1
            self._request = None
            self._pending_instruction = instruction
            self._strategy.reset()

    def request(self, tick: int, frames: dict[str, ValidatedFrame], proprio: np.ndarray | None = None) -> bool:
        """Queue an observation (checked frames per camera, the robot state where the policy uses it) unless a
        forward pass is already running or queued; True when queued. Frames are converted to RGB on this
        worker's thread."""
        with self._wake:
            if self._busy or self._request is not None:
                return False
            self._request = (self._epoch, tick, frames, proprio)
            self._wake.notify()
            return True

    def action_for(self, tick: int) -> tuple[np.ndarray, float, int] | None:
        with self._lock:
            return self._strategy.action_for(tick)

    def _run(self) -> None:
        # Linux niceness is per thread: under CPU contention the control tick must win over the model.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INFERENCE_NICENESS)
        except (AttributeError, OSError):
            pass
        while True:
            with self._wake:
                while not self._stopping and self._request is None:
                    self._wake.wait()
                if self._stopping:
                    return
                epoch, tick, frames, proprio = self._request
                self._request = None
                instruction, self._pending_instruction = self._pending_instruction, None
                self._busy = True
            try:
                self._forward(epoch, tick, frames, proprio, instruction)
            except Exception as error:  # the model must never take the node down: report and hold
                self._report(epoch, f"policy step failed: {type(error).__name__}: {error}")
            finally:
                with self._lock:
                    self._busy = False

    def _report(self, epoch: int, message: str) -> None:
        """Report an error unless it belongs to an instruction that has been replaced meanwhile."""
        with self._lock:
            current = epoch == self._epoch
        if current:
            self._on_error(message)

    def _forward(self, epoch: int, tick: int, frames: dict[str, ValidatedFrame], proprio: np.ndarray | None,
                 instruction: str | None) -> None:
        if instruction is not None:
            try:
                self._policy.reset(instruction)
            except ValueError as error:
                self._report(epoch, f"policy refused the instruction: {error}")
                return
        images = {name: pixels_to_rgb(frame.pixels, frame.encoding) for name, frame in frames.items()}
        start = time.perf_counter()
        output = self._policy.step(images, proprio)
        latency = time.perf_counter() - start
        arm = np.asarray(output.arm, dtype=np.float64)
        gripper = np.asarray(output.gripper, dtype=np.float64)
        with self._lock:
            self.latency_s = latency
            if epoch != self._epoch:
                return  # computed for an instruction that has been replaced
            result = ChunkResult(arm=arm, gripper=gripper, tick=tick, latency_s=latency,
                                 frame_stamps={name: frame.stamp for name, frame in frames.items()})
            self._strategy.submit(result, tick)  # refuses non-finite or malformed chunks (ValueError)
        self._on_chunk(result)
