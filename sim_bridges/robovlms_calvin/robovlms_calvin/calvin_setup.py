"""Finding a user's CALVIN checkouts and building the evaluation env, task oracle and instructions from them.

calvin_env is not on PyPI (pybullet, with its data/ and conf/ folders in the git checkout) and nothing of it is
shipped here: every import of it happens in this module, from the checkout the user names.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETUP_STEPS = """CALVIN is not set up. Steps (once):
  git clone --recursive https://github.com/mees/calvin_env.git ~/calvin_env
  git clone https://github.com/mees/calvin.git ~/calvin     # validation instructions (calvin_models/conf)
  .venv/bin/pip install pybullet gym hydra-core omegaconf opencv-python-headless gitpython numpy-quaternion
(calvin_env itself needs no install: the bridge imports it from the checkout), then pass calvin_env_dir:=~/calvin_env calvin_dir:=~/calvin (or --calvin-env-dir/--calvin-dir, or the
CALVIN_ENV_DIR / CALVIN_DIR environment variables). Optional: dataset_dir:=<task_D_D|task_ABC_D|...> uses the
dataset's validation/.hydra/merged_config.yaml, as CALVIN's own evaluation does."""

ANNOTATIONS = Path("calvin_models/conf/annotations/new_playtable_validation.yaml")
TASKS_CONFIG = Path("conf/tasks/new_playtable_tasks.yaml")
# calvin_env's config groups for scene D with both RGB cameras, as in the D validation data.
DEFAULT_GROUPS = {"cameras": "static_and_gripper", "env": "play_table_env", "scene": "calvin_scene_D",
                  "robot": "panda_longer_finger"}


class CalvinUnavailable(RuntimeError):
    """calvin_env (or its dependencies, or the instructions) cannot be used; the message says what to do."""


@dataclass(frozen=True)
class CalvinPaths:
    calvin_env_dir: Path
    calvin_dir: Path | None = None
    dataset_dir: Path | None = None

    def check(self, need_annotations: bool = True) -> None:
        if not (self.calvin_env_dir / "calvin_env" / "__init__.py").is_file():
            raise CalvinUnavailable(f"{self.calvin_env_dir} is not a calvin_env checkout (no calvin_env/ package)."
                                    f"\n{SETUP_STEPS}")
        for folder in ("data", "conf"):
            if not (self.calvin_env_dir / folder).is_dir():
                raise CalvinUnavailable(f"{self.calvin_env_dir / folder} is missing: calvin_env needs its {folder}/ "
                                        f"folder from the git checkout.\n{SETUP_STEPS}")
        if need_annotations and (self.calvin_dir is None or not (self.calvin_dir / ANNOTATIONS).is_file()):
            raise CalvinUnavailable(f"the validation instructions ({ANNOTATIONS}) are not under calvin_dir "
                                    f"{self.calvin_dir}.\n{SETUP_STEPS}")


def import_calvin_env(paths: CalvinPaths) -> Any:
    """The calvin_env package of the checkout; CalvinUnavailable names the missing dependency."""
    paths.check(need_annotations=False)
    if str(paths.calvin_env_dir) not in sys.path:
        sys.path.insert(0, str(paths.calvin_env_dir))
    try:
        importlib.import_module("calvin_env.envs.play_table_env")
        return importlib.import_module("calvin_env")
    except ImportError as error:
        raise CalvinUnavailable(f"calvin_env cannot be imported: {error}.\n{SETUP_STEPS}") from error


def env_config(paths: CalvinPaths, use_egl: bool = False) -> Any:
    """The env's resolved config: the dataset's merged_config.yaml when a dataset is given (CALVIN's own
    evaluation env), else calvin_env's conf groups for scene D with the static and gripper cameras."""
    from omegaconf import OmegaConf

    if paths.dataset_dir is not None:
        merged = paths.dataset_dir / "validation" / ".hydra" / "merged_config.yaml"
        if not merged.is_file():
            raise CalvinUnavailable(f"{merged} is missing: dataset_dir must be a CALVIN dataset (task_D_D, ...)")
        config = OmegaConf.load(merged)
        config.data_path = str(paths.calvin_env_dir / "data")
    else:
        from hydra import compose, initialize_config_dir

        with initialize_config_dir(config_dir=str(paths.calvin_env_dir / "conf"), version_base=None):
            config = compose(overrides=[f"+{group}={name}" for group, name in DEFAULT_GROUPS.items()] + [
                f"+data_path={paths.calvin_env_dir / 'data'}", "+seed=0", "+use_vr=false"])
    config.env.use_egl = use_egl
    OmegaConf.resolve(config)
    return config


def make_env(paths: CalvinPaths, use_egl: bool = False) -> Any:
    """A PlayTableSimEnv as CALVIN's evaluation builds it (no GUI, scene info on)."""
    import_calvin_env(paths)
    import hydra

    config = env_config(paths, use_egl)
    return hydra.utils.instantiate(config.env, show_gui=False, use_vr=False, use_scene_info=True)


def make_task_oracle(paths: CalvinPaths) -> Any:
    """calvin_env's Tasks oracle on its new_playtable_tasks.yaml (the evaluation's task definitions)."""
    import_calvin_env(paths)
    from omegaconf import OmegaConf
    from calvin_env.envs.tasks import Tasks

    return Tasks(OmegaConf.load(paths.calvin_env_dir / TASKS_CONFIG).tasks)


def load_instructions(paths: CalvinPaths) -> dict[str, str]:
    """subtask -> the first validation instruction (the one CALVIN's evaluation uses)."""
    paths.check(need_annotations=True)
    import yaml

    annotations = yaml.safe_load((paths.calvin_dir / ANNOTATIONS).read_text())
    return {task: str(texts[0]) for task, texts in annotations.items()}
