"""Episodes run through a graph's services and topics, the way every benchmark here drives a sim bridge:
reset_episode, then the episode's instruction (through trial/start when a trial recorder is in the graph, so
each episode is one rosbag2 trial), episode_info until the episode ends, then trial/stop and trial/label.
Used by the CALVIN and SimplerEnv evaluations."""
from __future__ import annotations

import time
from dataclasses import dataclass

from std_msgs.msg import String

from robovlms_io import names, qos
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import LabelTrial, ResetEpisode, StartTrial, StopTrial
from robovlms_policy.trials.operator import OperatorGraph


@dataclass
class EpisodeRun:
    reset: ResetEpisode.Response
    info: EpisodeInfo  # the bridge's last episode_info of the episode (its verdict and step count)
    trial_id: str
    seconds: float


class GraphEpisodes:
    """``recording``: a trial recorder is in the graph (it publishes the instruction per trial); otherwise the
    operator publishes it. ``stop_at_success``: an episode ends at the bridge's first success (CALVIN) or only
    at the step limit (SimplerEnv judges the last step)."""

    def __init__(self, graph: OperatorGraph, recording: bool, stop_at_success: bool = True,
                 reset_timeout_s: float = 15.0) -> None:
        self.graph, self.recording, self.stop_at_success = graph, recording, stop_at_success
        self.reset_timeout_s = reset_timeout_s
        self.instruction_pub = None if recording else graph.operator.create_publisher(
            String, names.INSTRUCTION_TOPIC, qos.LATCHED)

    def run(self, request: ResetEpisode.Request, setting: str, max_steps: int, label_note: str) -> EpisodeRun:
        self._idle()  # the policy is reset per episode: idle, then the new instruction
        previous = self.graph.latest_info.episode_id if self.graph.latest_info is not None else 0
        reset = self.graph.call(names.RESET_EPISODE_SERVICE, request, self.reset_timeout_s)
        if not reset.success:
            raise RuntimeError(f"reset_episode({request.task or '-'}, seed {request.seed}) failed: {reset.message}")
        started = time.monotonic()
        trial_id = ""
        if self.recording:
            start = self.graph.call("trial/start", StartTrial.Request(
                instruction=reset.instruction, task=reset.task, setting=setting, max_steps=max_steps))
            if not start.success:
                raise RuntimeError(f"trial/start failed: {start.message}")
            trial_id = start.trial_id
        else:
            self.instruction_pub.publish(String(data=reset.instruction))
        info = self._wait_for_end(previous, started, max_steps)
        if self.recording:
            self.graph.call("trial/stop", StopTrial.Request(reason="success" if info.success else "timeout"))
            self.graph.call("trial/label", LabelTrial.Request(trial_id=trial_id, success=info.success,
                                                              note=label_note))
        return EpisodeRun(reset, info, trial_id, time.monotonic() - started)

    def _idle(self) -> None:
        if self.instruction_pub is not None:
            self.instruction_pub.publish(String(data=""))

    def _wait_for_end(self, previous_episode: int, started: float, max_steps: int) -> EpisodeInfo:
        """Until the bridge reports the end in the new episode (it stops stepping then)."""
        deadline = started + max_steps * 2.0 + 60.0  # generous: a slow machine, a slow model
        while time.monotonic() < deadline:
            info = self.graph.latest_info
            if info is not None and info.episode_id > previous_episode and (
                    (self.stop_at_success and info.success) or info.step >= max_steps):
                return info
            time.sleep(0.02)
        raise RuntimeError(f"the episode did not end within {deadline - started:.0f} s")
