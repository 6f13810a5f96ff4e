"""The real calvin_env, when a checkout is named by CALVIN_ENV_DIR (and CALVIN_DIR for the instructions):
the env built as the bridge builds it, commands moving the Panda, and a short protocol run through ROS with a
tiny random checkpoint on the policy node. Skipped otherwise (CI has no calvin_env)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from robovlms_calvin.calvin_setup import CalvinPaths, CalvinUnavailable, import_calvin_env

PATHS = CalvinPaths(Path(os.environ.get("CALVIN_ENV_DIR", "/nonexistent")),
                    Path(os.environ["CALVIN_DIR"]) if os.environ.get("CALVIN_DIR") else None)
try:
    import_calvin_env(PATHS)
    PATHS.check(need_annotations=True)
    MISSING = ""
except CalvinUnavailable as error:
    MISSING = str(error).splitlines()[0]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=f"no calvin_env: {MISSING}")]


@pytest.fixture(scope="module")
def cell():
    from robovlms_calvin.calvin_bridge_node import make_cell

    made = make_cell(PATHS, use_egl=False)
    yield made
    made.close()


def test_commands_move_the_panda_in_base_link(cell):
    from robovlms_calvin.sequences import evaluation_chains

    chain = evaluation_chains(1000)[0]
    cell.reset_chain(chain)
    cell.start_subtask(chain.subtasks[0])
    start = cell.robot().pose_in_base(cell.base)[0]
    assert cell.image("static").shape == (200, 200, 3) and cell.image("wrist").shape == (84, 84, 3)
    cell.set_twist(np.array([0.1, 0.0, 0.0]), np.zeros(3))  # 1 cm per 0.1 s step along base x
    began = time.perf_counter()
    for _ in range(10):
        cell.step(0.1)
    steps_per_s = 10 / (time.perf_counter() - began)
    moved = cell.robot().pose_in_base(cell.base)[0] - start
    print(f"calvin_env steps/s (both cameras, tiny renderer): {steps_per_s:.1f}; moved {moved.round(4)}")
    assert 0.06 < moved[0] < 0.12 and abs(moved[1]) < 0.02 and abs(moved[2]) < 0.02
    assert not cell.success()


def test_a_short_protocol_run_through_ros(ros_context, cell, tmp_path):
    from rclpy.parameter import Parameter

    from robovlms_calvin.calvin_eval import RosSubtaskRunner
    from robovlms_calvin.calvin_setup import load_instructions
    from robovlms_calvin.composition import compose_calvin_cell
    from robovlms_calvin.protocol import evaluate, write_results
    from robovlms_calvin.sequences import evaluation_chains
    from robovlms_demo.graph import policy_node
    from robovlms_policy.trials.operator import OperatorGraph
    from robovlms_io import names
    from robovlms_msgs.srv import ResetEpisode
    from robovlms_policy.vla.init_checkpoint import create_checkpoint

    checkpoint = tmp_path / "tiny"
    create_checkpoint(checkpoint, "kosmos2", "policy_head", tiny=True, image_size=32, window=4, chunk=2)
    max_steps = 8
    nodes = compose_calvin_cell(ros_context, cell=cell, instructions=load_instructions(PATHS), bridge_parameters=[
        Parameter("max_subtask_steps", value=max_steps)])
    graph = OperatorGraph(ros_context, [*nodes.nodes, policy_node(ros_context, str(checkpoint), "replan")],
                          {names.RESET_EPISODE_SERVICE: ResetEpisode})
    graph.start()
    try:
        began = time.perf_counter()
        results = evaluate(RosSubtaskRunner(graph, None, max_steps), evaluation_chains(1000)[:2])
        seconds = time.perf_counter() - began
    finally:
        graph.nodes.remove(nodes.bridge)  # the module's env outlives this graph
        graph.close()
        nodes.bridge.cell = None
        nodes.bridge.destroy_node()
    steps = sum(o.steps for r in results for o in r.outcomes)
    print(write_results(tmp_path / "run", results, {"checkpoint": "tiny random kosmos2", "max_subtask_steps": max_steps},
                        "CALVIN smoke run"))
    print(f"env steps/s through ROS: {steps / seconds:.1f}")
    assert [len(r.outcomes) for r in results] == [1 + r.completed if r.completed < 5 else 5 for r in results]
    assert all(o.steps == max_steps or o.success for r in results for o in r.outcomes)
