"""robovlms-calvin-eval: CALVIN's long-horizon protocol through the ROS graph, and merging shard results.

    robovlms-calvin-eval run --checkpoint CKPT [--chains N] [--shard I/N] [--record] [--out DIR]
    robovlms-calvin-eval merge OUT SHARD_DIR...

``run`` hosts the CALVIN cell (calvin_bridge + the Kinova driver on the calvin backend), the policy node and,
with --record, the trial recorder in one process, and drives them over DDS only: reset_episode per subtask,
the subtask's validation instruction on /instruction (through trial/start when recording, so every subtask
is one rosbag2 trial), episode_info for the oracle's verdict and the step count.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rclpy.parameter import Parameter

from robovlms_calvin.calvin_bridge_node import CONTINUE_CHAIN, MAX_SUBTASK_STEPS, START_CHAIN
from robovlms_calvin.calvin_setup import CalvinUnavailable
from robovlms_calvin.composition import compose_calvin_cell
from robovlms_calvin.protocol import ChainResult, SubtaskOutcome, evaluate, merge_results, select_chains, write_results
from robovlms_calvin.sequences import NUM_CHAINS, Chain, evaluation_chains
from robovlms_demo.graph import bringup_context, policy_node
from robovlms_policy.trials.graph_episodes import GraphEpisodes
from robovlms_policy.trials.shards import parse_shard
from robovlms_policy.trials.operator import TRIAL_SERVICES, OperatorGraph, assert_domain_is_free, run_graph_session
from robovlms_io import names
from robovlms_msgs.srv import ResetEpisode
from robovlms_policy.runtime.chunk_strategies import STRATEGIES

# The same parameter files as calvin.launch.py, in the same order (calvin.yaml's driver section wins).
CONFIG_FILES = ("kinova_driver.yaml", "calvin.yaml", "policy_node.yaml", "trial_recorder.yaml")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="robovlms-calvin-eval", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="evaluate a checkpoint on CALVIN chains through ROS")
    run.add_argument("--checkpoint", required=True, help="policy checkpoint directory (CALVIN-trained)")
    run.add_argument("--chains", type=int, default=NUM_CHAINS, help="the first N of CALVIN's 1000 chains")
    run.add_argument("--shard", type=parse_shard, default=(0, 1), help="I/N: this machine's part of the chains")
    run.add_argument("--max-steps", type=int, default=MAX_SUBTASK_STEPS, help="steps per subtask (CALVIN: 360)")
    run.add_argument("--calvin-env-dir", default="", help="calvin_env checkout (default $CALVIN_ENV_DIR)")
    run.add_argument("--calvin-dir", default="", help="mees/calvin checkout (default $CALVIN_DIR)")
    run.add_argument("--dataset-dir", default="", help="CALVIN dataset whose validation env config to use")
    run.add_argument("--execution-strategy", choices=STRATEGIES, default="replan")
    run.add_argument("--record", action="store_true", help="record every subtask as a rosbag2 trial")
    run.add_argument("--out", type=Path, default=None, help="output directory (default runs/calvin-<time>)")
    merge = commands.add_parser("merge", help="combine the results of shards of one run")
    merge.add_argument("out", type=Path)
    merge.add_argument("shards", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "run":
        if not 1 <= args.chains <= NUM_CHAINS:
            parser.error(f"--chains must be in 1..{NUM_CHAINS}")
        if args.max_steps < 1:
            parser.error("--max-steps must be at least 1")
        args.out = args.out or Path("runs") / time.strftime("calvin-%Y%m%d-%H%M%S")
    return args


class RosSubtaskRunner:
    """Runs each subtask through the graph's services and topics."""

    def __init__(self, graph: OperatorGraph, recorder, max_steps: int) -> None:
        self.episodes, self.max_steps = GraphEpisodes(graph, recording=recorder is not None), max_steps

    def run_subtask(self, chain: Chain, position: int, subtask: str) -> SubtaskOutcome:
        variation = START_CHAIN if position == 0 else CONTINUE_CHAIN
        run = self.episodes.run(ResetEpisode.Request(task=subtask, seed=chain.index, variation=variation),
                                f"calvin_chain_{chain.index}", self.max_steps, "CALVIN task oracle")
        return SubtaskOutcome(subtask, run.reset.instruction, bool(run.info.success), int(run.info.step),
                              run.seconds, run.trial_id)


def run(args: argparse.Namespace) -> int:
    context = bringup_context(CONFIG_FILES)

    def body(keep) -> None:
        assert_domain_is_free(context)
        cell = compose_calvin_cell(context, bridge_parameters=[
            Parameter("calvin_env_dir", value=args.calvin_env_dir), Parameter("calvin_dir", value=args.calvin_dir),
            Parameter("dataset_dir", value=args.dataset_dir), Parameter("max_subtask_steps", value=args.max_steps)])
        nodes = [*cell.nodes, policy_node(context, args.checkpoint, args.execution_strategy)]
        recorder = None
        if args.record:
            from robovlms_policy.trials.trial_recorder_node import TrialRecorderNode
            recorder = TrialRecorderNode(context=context, parameter_overrides=[
                Parameter("output_dir", value=str(args.out.resolve()))])
            nodes.append(recorder)
        services = TRIAL_SERVICES if recorder else {names.RESET_EPISODE_SERVICE: ResetEpisode}
        graph = keep(OperatorGraph(context, nodes, services))
        graph.start()
        chains = select_chains(evaluation_chains(NUM_CHAINS), args.chains, *args.shard)
        print(f"calvin: {len(chains)} chain(s) (shard {args.shard[0]}/{args.shard[1]} of the first {args.chains}), "
              f"checkpoint {args.checkpoint}, output {args.out}", flush=True)
        results = evaluate(RosSubtaskRunner(graph, recorder, args.max_steps), chains, _progress)
        meta = {"commander": f"policy ({args.execution_strategy})", "checkpoint": str(args.checkpoint),
                "max_subtask_steps": args.max_steps, "shard": f"{args.shard[0]}/{args.shard[1]}",
                "first_chains": args.chains, "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        print(write_results(args.out, results, meta, f"CALVIN run {args.out.name}"))

    return run_graph_session("robovlms-calvin-eval", context, body, errors=(CalvinUnavailable, RuntimeError,
                                                                            ValueError))


def _progress(result: ChainResult, results: list[ChainResult]) -> None:
    done = [r.completed for r in results]
    rates = " ".join(f"{k}/5 {sum(c >= k for c in done) / len(done):.0%}" for k in range(1, 6))
    print(f"  chain {result.index:<4} completed {result.completed}/5   [{len(results)} done: {rates}]", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "merge":
        try:
            meta, results = merge_results(args.shards)
        except ValueError as error:
            print(f"robovlms-calvin-eval merge: {error}", file=sys.stderr)
            return 1
        print(write_results(args.out, results, meta, f"CALVIN run {args.out.name} ({len(args.shards)} shards)"))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
