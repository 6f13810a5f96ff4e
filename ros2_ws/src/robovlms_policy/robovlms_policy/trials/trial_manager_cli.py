"""robovlms-trial-manager: run an evaluation plan against a running graph, or report on a run.

    robovlms-trial-manager run PLAN.yaml --run runs/eval-v1 [--sim] [--seed 0]
    robovlms-trial-manager report runs/eval-v1 [--compare runs/eval-v0]

`run` hosts the trial recorder itself (trials go to the run directory), so launch the graph without
record:=true. With --sim the scene is reset by the sim's reset_episode and trials are labelled by its oracle;
otherwise the operator resets the scene, presses Enter, may type `s` + Enter to stop a trial, and labels it
(y / n / p for partial, then an optional note) or answers through the trial/label service. Ctrl-C stops the
running trial (kept as interrupted, run again on resume) and the run; the same command resumes it.
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
from pathlib import Path
from typing import Callable

import rclpy
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import Parameter

from robovlms_io import names

from .operator import TRIAL_SERVICES, OperatorGraph, assert_domain_is_free, run_graph_session
from .plan import PlannedTrial, PlanError, load_plan
from .report import compare_runs, read_results, write_report
from .trial_manager import TrialManager, checkpoint_identity
from .trial_recorder_node import TrialRecorderNode

POLICY_NODE = "/policy_node"
ANSWERS = {"y": "success", "n": "failure", "p": "partial"}


class KeyboardOperator:
    """The operator at the terminal; stdin is read by a thread so a running trial can be stopped by typing."""

    def __init__(self, read_line: Callable[[], str] = sys.stdin.readline, write: Callable[[str], None] = print):
        self._lines: queue.Queue[str] = queue.Queue()
        self._write = write
        threading.Thread(target=self._read, args=(read_line,), daemon=True).start()

    def _read(self, read_line: Callable[[], str]) -> None:
        while line := read_line():
            self._lines.put(line.strip().lower())
        self._lines.put("q")  # end of input: nobody is there to confirm or label

    def _answer(self, prompt: str, labelled: Callable[[], bool] = lambda: False) -> str | None:
        self._write(prompt)
        while True:
            try:
                return self._lines.get(timeout=0.1)
            except queue.Empty:
                if labelled():
                    return None

    def ready(self, trial: PlannedTrial, number: int, total: int) -> str:
        answer = self._answer(f"trial {number}/{total}: {trial.task} [{trial.setting}] '{trial.instruction}'. Reset "
                              "the scene, then Enter to start (s: skip, q: quit)")
        return {"s": "skip", "q": "quit"}.get(answer or "", "go")

    def wants_stop(self) -> bool:
        try:
            return self._lines.get_nowait() == "s"
        except queue.Empty:
            return False

    def label(self, trial_id: str, labelled: Callable[[], bool]) -> tuple[str, str] | None:
        while True:
            answer = self._answer(f"{trial_id}: success? y / n / p (partial), or label it via trial/label", labelled)
            if answer is None:
                return None
            if answer[:1] in ANSWERS:
                note = self._answer("note (Enter for none):", labelled)
                return ANSWERS[answer[:1]], note or ""


def policy_checkpoint(graph: OperatorGraph) -> dict:
    """The running policy node's checkpoint parameter and, when readable here, its digests."""
    client = graph.operator.create_client(GetParameters, f"{POLICY_NODE}/get_parameters")
    if not client.wait_for_service(timeout_sec=3.0):
        return {}
    response = graph.call_client(client, GetParameters.Request(names=["checkpoint"]))
    return checkpoint_identity(response.values[0].string_value if response and response.values else "")


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", *(["--params-file", str(args.params_file)] if args.params_file else [])],
               context=context)

    def body(keep) -> None:
        assert_domain_is_free(context, services=["/trial/start"],
                              hint="a trial recorder runs already (launched with record:=true?): the trial manager "
                                   "records the trials itself")
        recorder = TrialRecorderNode(context=context, parameter_overrides=[
            Parameter("output_dir", value=str(args.run.resolve()))])
        services = dict(TRIAL_SERVICES) if args.sim else {k: v for k, v in TRIAL_SERVICES.items()
                                                          if k != names.RESET_EPISODE_SERVICE}
        graph = keep(OperatorGraph(context, [recorder], services))
        graph.start()
        manager = TrialManager(graph, recorder, plan, args.run, sim=args.sim,
                               operator=None if args.sim else KeyboardOperator(), seed=args.seed,
                               checkpoint=policy_checkpoint(graph))
        results = manager.run()
        print(write_report(args.run, results, f"Evaluation {plan.name}", f"Run {args.run}.",
                           {"plan": plan.name, "plan_digest": plan.digest, "checkpoint": manager.checkpoint}))

    return run_graph_session("robovlms-trial-manager", context, body,
                             interrupted="interrupted; run the same command to resume")


def report(args: argparse.Namespace) -> int:
    results = read_results(args.run)
    if not results:
        print(f"robovlms-trial-manager: {args.run} holds no trials", file=sys.stderr)
        return 1
    print(write_report(args.run, results, f"Run {args.run.name}"))
    if args.compare:
        comparison = compare_runs(args.run, args.compare)
        (args.run / f"compare_{args.compare.name}.md").write_text(comparison + "\n")
        print(comparison)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-trial-manager", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run (or resume) an evaluation plan")
    run_parser.add_argument("plan", type=Path, help="evaluation plan (YAML)")
    run_parser.add_argument("--run", required=True, type=Path, help="run directory (reused to resume)")
    run_parser.add_argument("--sim", action="store_true", help="reset by reset_episode, label by the sim's oracle")
    run_parser.add_argument("--seed", type=int, default=0, help="sim seed of each cell's first trial")
    run_parser.add_argument("--params-file", type=Path, help="trial_recorder parameters (e.g. record_topics)")
    report_parser = commands.add_parser("report", help="write results and the report of a run")
    report_parser.add_argument("run", type=Path)
    report_parser.add_argument("--compare", type=Path, help="another run of the same plan, shown side by side")
    args = parser.parse_args(argv)
    try:
        return run(args) if args.command == "run" else report(args)
    except PlanError as error:
        print(f"robovlms-trial-manager: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
