"""`make demo`: evaluation episodes of every twin task, end to end over real DDS, recorded as rosbag2 (MCAP).

One process hosts the real graph: the twin bridge (physics, both cameras), the Kinova driver on its sim backend
(the same safety layer as on the robot), a commander — the policy node running the shipped default checkpoint
(or ``--checkpoint DIR``), or with ``--commander expert`` the scripted expert publishing on the same command
topic — and the trial recorder. The operator side (this
module, the trial manager on a plan of the chosen tasks) drives them only through their ROS services and
topics: reset_episode, trial/start, trial/stop, trial/label and episode_info. Output: ``runs/<timestamp>/``
with one folder per trial (bag + trial.json), ``results.csv``, ``results.json``, ``report.md`` and plots/,
the trial manager's report.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rclpy.node import Node
from rclpy.parameter import Parameter

from robovlms_demo.expert_commander import ExpertCommander
from robovlms_demo.graph import bringup_context, policy_node
from robovlms_policy.runtime.chunk_strategies import STRATEGIES
from robovlms_policy.trials.operator import TRIAL_SERVICES, OperatorGraph, assert_domain_is_free, run_graph_session
from robovlms_policy.trials.plan import EvaluationPlan, parse_plan
from robovlms_policy.trials.report import write_report
from robovlms_policy.trials.trial_manager import TrialManager, checkpoint_identity
from robovlms_policy.trials.trial_recorder_node import TrialRecorderNode
from robovlms_twin.cell import CellConfig, KinovaCell
from robovlms_twin.sim_cell import compose_sim_cell
from robovlms_twin.tasks import TASKS, TRAIN_SEED_BASE, parse_tasks

# The same parameter files as kinova_sim.launch.py, in the same order (twin.yaml's driver section wins).
CONFIG_FILES = ("kinova_driver.yaml", "twin.yaml", "policy_node.yaml", "trial_recorder.yaml")
DEFAULT_CHECKPOINT = "twin_default"  # under robovlms_policy's share/checkpoints (made by `make train-default`)


def default_checkpoint() -> Path:
    return Path(get_package_share_directory("robovlms_policy")) / "checkpoints" / DEFAULT_CHECKPOINT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="all", help=f"comma-separated subset of {', '.join(TASKS)} (default all)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per task (seeds seed, seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variation", default="default", help="default, unseen_colors, distractors or paraphrase")
    parser.add_argument("--max-steps", type=int, default=120, help="control steps before an episode counts as failed")
    parser.add_argument("--commander", choices=("policy", "expert"), default="policy",
                        help="policy: the policy node on --checkpoint; expert: the scripted expert")
    parser.add_argument("--checkpoint", default="", help="checkpoint directory (default: the shipped twin_default)")
    parser.add_argument("--execution-strategy", choices=STRATEGIES, default="replan",
                        help="how the policy node turns chunks into per-tick actions")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/<timestamp>)")
    args = parser.parse_args(argv)
    try:
        args.tasks = parse_tasks(args.tasks)
    except ValueError as err:
        parser.error(str(err))
    if args.episodes < 1 or args.max_steps < 1:
        parser.error("--episodes and --max-steps must be at least 1")
    if args.commander == "expert" and args.checkpoint:
        parser.error("--checkpoint is for --commander policy")
    if args.commander == "policy":
        args.checkpoint = args.checkpoint or str(default_checkpoint())
        if not Path(args.checkpoint).is_dir():
            parser.error(f"--checkpoint {args.checkpoint} is not a directory (run `make train-default` to make the "
                         "default one, or use --commander expert)")
    if args.seed + args.episodes > TRAIN_SEED_BASE:
        parser.error(f"seeds from {TRAIN_SEED_BASE} on are the training seeds: evaluate below them")
    args.out = args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    return args


class DemoGraph(OperatorGraph):
    """The demo's nodes on one executor thread, plus an operator node that talks to them over DDS."""

    def __init__(self, context, args: argparse.Namespace) -> None:
        self.cell = KinovaCell(CellConfig(image_size=args.image_size))
        first = args.tasks[0]
        self.recorder = TrialRecorderNode(context=context, parameter_overrides=[
            Parameter("output_dir", value=str(args.out.resolve()))])
        sim = compose_sim_cell(context, self.cell, bridge_parameters=[
            Parameter("image_size", value=args.image_size), Parameter("task", value=first),
            Parameter("seed", value=args.seed), Parameter("variation", value=args.variation)])
        super().__init__(context, [*sim.nodes, self._commander(context, args), self.recorder], TRIAL_SERVICES)

    def _commander(self, context, args: argparse.Namespace) -> Node:
        if args.commander == "expert":
            return ExpertCommander(self.cell, context=context)
        return policy_node(context, args.checkpoint, args.execution_strategy)

    def close(self) -> None:
        super().close()
        self.cell.close()


def demo_plan(args: argparse.Namespace) -> EvaluationPlan:
    """The demo as an evaluation plan: every chosen task in one setting (the twin variation), --episodes times;
    a generous wall-clock bound of max_steps control periods for a slow machine or model."""
    return parse_plan({"name": "demo", "settings": [args.variation], "trials_per_cell": args.episodes,
                       "max_steps": args.max_steps, "max_duration_s": args.max_steps * 0.1 * 3 + 10.0,
                       "tasks": [{"task": task} for task in args.tasks]})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    context = bringup_context(CONFIG_FILES)

    def body(keep) -> None:
        assert_domain_is_free(context)
        graph = keep(DemoGraph(context, args))
        graph.start()
        commander = (f"policy {args.checkpoint} ({args.execution_strategy})" if args.commander == "policy"
                     else "scripted expert")
        print(f"demo: {len(args.tasks)} task(s) x {args.episodes} episode(s), {commander}, output {args.out}")
        checkpoint = checkpoint_identity(args.checkpoint) if args.commander == "policy" else {}
        manager = TrialManager(graph, graph.recorder, demo_plan(args), args.out, sim=True, seed=args.seed,
                               checkpoint=checkpoint)
        results = manager.run()
        print(write_report(args.out, results, f"Demo run {args.out.name}", f"Commander: {commander}.",
                           {"commander": commander, "checkpoint": checkpoint}))

    return run_graph_session("demo", context, body)


if __name__ == "__main__":
    sys.exit(main())
