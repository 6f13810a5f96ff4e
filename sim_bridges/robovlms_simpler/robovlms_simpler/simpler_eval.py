"""robovlms-simpler-eval: SimplerEnv's visual-matching protocol through the ROS graph, and merging shard results.

    robovlms-simpler-eval run --checkpoint CKPT --robot widowx|google_robot [--tasks T1,T2] [--episodes N]
                              [--shard I/N] [--backend maniskill2|maniskill3] [--rotation rotvec|euler] [--record]
    robovlms-simpler-eval merge OUT SHARD_DIR...
    robovlms-simpler-eval tasks

``run`` hosts the SimplerEnv cell (simpler_bridge + the Kinova driver on the simpler backend), the policy node at
the robot's control rate and, with --record, the trial recorder in one process, and drives them over DDS only:
reset_episode per episode, the env's instruction on /instruction (through trial/start when recording, so every
episode is one rosbag2 trial), episode_info for the step count and the verdict at the last step.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rclpy.parameter import Parameter

from robovlms_demo.graph import bringup_context, policy_node
from robovlms_io import names
from robovlms_msgs.srv import ResetEpisode
from robovlms_policy.runtime.chunk_strategies import STRATEGIES
from robovlms_policy.trials.graph_episodes import GraphEpisodes
from robovlms_policy.trials.operator import TRIAL_SERVICES, OperatorGraph, assert_domain_is_free, run_graph_session
from robovlms_policy.trials.report import TrialResult
from robovlms_policy.trials.shards import parse_shard, take_shard
from robovlms_simpler.actions import ROTATION_FORMATS
from robovlms_simpler.composition import compose_simpler_cell
from robovlms_simpler.protocol import merge_runs, plan_episodes, run_episodes, write_run
from robovlms_simpler.simpler_setup import BACKENDS, MANISKILL2, SimplerUnavailable
from robovlms_simpler.tasks import ROBOTS, TASKS, Episode, select_tasks

# The launch file's parameter files, in its order: simpler.yaml last, so its driver and policy sections win.
CONFIG_FILES = ("kinova_driver.yaml", "policy_node.yaml", "trial_recorder.yaml", "simpler.yaml")
RESET_TIMEOUT_S = 120.0  # a reset that changes the URDF or overlay rebuilds the env (ray-traced drawers: slow)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="robovlms-simpler-eval", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="evaluate a checkpoint on SimplerEnv tasks through ROS")
    run.add_argument("--checkpoint", required=True, help="policy checkpoint directory (trained for the robot)")
    run.add_argument("--robot", choices=tuple(ROBOTS), required=True)
    run.add_argument("--tasks", default="", help="comma-separated task names (default: all of the robot's)")
    run.add_argument("--episodes", type=int, default=None, help="per task, spread over its set (default: all)")
    run.add_argument("--shard", type=parse_shard, default=(0, 1), help="I/N: this machine's part of the episodes")
    run.add_argument("--backend", choices=BACKENDS, default=MANISKILL2)
    run.add_argument("--rotation", choices=ROTATION_FORMATS, default="rotvec",
                     help="what the checkpoint's rotation outputs are (euler: raw OXE roll/pitch/yaw increments)")
    run.add_argument("--execution-strategy", choices=STRATEGIES, default="replan")
    run.add_argument("--record", action="store_true", help="record every episode as a rosbag2 trial")
    run.add_argument("--out", type=Path, default=None, help="output directory (default runs/simpler-<time>)")
    merge = commands.add_parser("merge", help="combine the results of shards of one run")
    merge.add_argument("out", type=Path)
    merge.add_argument("shards", type=Path, nargs="+")
    commands.add_parser("tasks", help="list the tasks and their episode sets")
    args = parser.parse_args(argv)
    if args.command == "run":
        try:
            args.task_list = select_tasks(args.tasks, args.robot)
        except ValueError as error:
            parser.error(str(error))
        if args.episodes is not None and args.episodes < 1:
            parser.error("--episodes must be at least 1")
        args.out = args.out or Path("runs") / time.strftime("simpler-%Y%m%d-%H%M%S")
    return args


class RosEpisodeRunner:
    """Runs each episode through the graph's services and topics, to the task's last step (or ``max_steps``,
    matching the bridge's max_steps parameter)."""

    def __init__(self, graph: OperatorGraph, recording: bool, max_steps: int = 0) -> None:
        self.episodes = GraphEpisodes(graph, recording, stop_at_success=False, reset_timeout_s=RESET_TIMEOUT_S)
        self.max_steps = max_steps

    def run_episode(self, episode: Episode) -> TrialResult:
        task = TASKS[episode.task]
        run = self.episodes.run(ResetEpisode.Request(task=task.name, seed=episode.index), episode.variant,
                                self.max_steps or task.max_steps, "SimplerEnv info['success'] at the last step")
        return TrialResult(run.trial_id, task.name, episode.variant, run.reset.instruction,
                           "success" if run.info.success else "failure", int(run.info.step), run.seconds,
                           seed=episode.index)


def run(args: argparse.Namespace) -> int:
    context = bringup_context(CONFIG_FILES)
    robot = ROBOTS[args.robot]

    def body(keep) -> None:
        assert_domain_is_free(context)
        cell = compose_simpler_cell(context, bridge_parameters=[
            Parameter("robot", value=args.robot), Parameter("backend", value=args.backend),
            Parameter("rotation", value=args.rotation)])
        nodes = [*cell.nodes, policy_node(context, args.checkpoint, args.execution_strategy,
                                          [Parameter("control_rate_hz", value=robot.control_freq)])]
        if args.record:
            from robovlms_policy.trials.trial_recorder_node import TrialRecorderNode
            nodes.append(TrialRecorderNode(context=context, parameter_overrides=[
                Parameter("output_dir", value=str(args.out.resolve()))]))
        services = TRIAL_SERVICES if args.record else {names.RESET_EPISODE_SERVICE: ResetEpisode}
        graph = keep(OperatorGraph(context, nodes, services))
        graph.start()
        episodes = take_shard(plan_episodes(args.task_list, args.episodes), *args.shard)
        print(f"simpler: {len(episodes)} episode(s) of {len(args.task_list)} task(s) (shard {args.shard[0]}/"
              f"{args.shard[1]}), {args.robot} on {args.backend}, checkpoint {args.checkpoint}, output {args.out}",
              flush=True)
        results = run_episodes(RosEpisodeRunner(graph, args.record), episodes, _progress)
        meta = {"robot": args.robot, "backend": args.backend, "checkpoint": str(args.checkpoint),
                "rotation": args.rotation, "commander": f"policy ({args.execution_strategy})",
                "episodes_per_task": args.episodes or "all", "shard": f"{args.shard[0]}/{args.shard[1]}",
                "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        print(write_run(args.out, results, meta, f"SimplerEnv run {args.out.name}"))

    return run_graph_session("robovlms-simpler-eval", context, body,
                             errors=(SimplerUnavailable, RuntimeError, ValueError))


def _progress(result: TrialResult, results: list[TrialResult]) -> None:
    wins = sum(r.success for r in results)
    print(f"  {result.task} #{result.seed:<3} {result.setting:<24} {result.outcome:<7} "
          f"[{len(results)} done: {wins / len(results):.0%}]", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "tasks":
        for task in TASKS.values():
            also = f", ManiSkill3 {task.maniskill3_id}" if task.maniskill3_id else ""
            print(f"{task.name:<48} {task.robot:<13} {task.episode_count:>4} episodes, {task.max_steps:>3} steps, "
                  f"{task.env_id}{also}")
        return 0
    if args.command == "merge":
        try:
            meta, results = merge_runs(args.shards)
        except ValueError as error:
            print(f"robovlms-simpler-eval merge: {error}", file=sys.stderr)
            return 1
        print(write_run(args.out, results, meta, f"SimplerEnv run {args.out.name} ({len(args.shards)} shards)"))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
