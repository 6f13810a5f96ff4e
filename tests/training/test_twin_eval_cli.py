"""robovlms-twin-eval: the direct-path closed-loop evaluation of a checkpoint from the command line."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")

from robovlms_training.twin_eval import main  # noqa: E402


def test_it_prints_a_success_table_for_the_chosen_tasks_and_seeds(capsys):
    from robovlms_demo.demo import default_checkpoint

    assert main(["--checkpoint", str(default_checkpoint()), "--tasks", "press_button,open_drawer",
                 "--episodes", "1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "(default, seeds 3..3, replan" in out
    rows = re.findall(r"^\| (\w+) \| (\d+)% \|$", out, re.MULTILINE)
    assert [task for task, _ in rows] == ["press_button", "open_drawer"]
    wins = sum(int(rate) // 100 for _, rate in rows)
    assert re.search(rf"^\| \*\*all\*\* \| \*\*\d+%\*\* \({wins}/2\) \|$", out, re.MULTILINE)


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "fold_laundry"], "unknown task(s) ['fold_laundry']"),
    (["--tasks", ","], "unknown task(s) ','"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--seed", "999999", "--episodes", "2"], "seeds from 1,000,000 are training layouts"),
])
def test_bad_arguments_are_refused_before_loading(args, message, tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert f"checkpoint directory {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
