"""Training recipes as YAML: one file per recipe (training/recipes/), loaded strictly into dataclasses.

A recipe has five sections, each the dataclass that uses it, so every setting is declared once:

    init:      InitSpec         a checkpoint to start from, or how to create one (backbone, structure, sizes)
    data:      [SourceSpec]     training sources (bag runs, episode stores, CALVIN splits, RLDS / LeRobot
                                directories), each with a sampling weight
    train:     TrainSettings    lengths, batch, validation, strategy, devices, precision, ...
    optim:     OptimizerConfig  AdamW, warm-up, schedule, gripper and per-dimension arm loss weights
    finetune:  FinetuneSpec     optional: from another embodiment's checkpoint (head kept or re-initialised)

Unknown or misspelt keys, wrong types and missing required keys are errors naming the key path (and the
nearest known key). ``--override train.max_steps=10`` sets one value (parsed as YAML) before validation. The
resolved recipe (every default filled in) is written with each run and checkpoint, and loads back unchanged.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .module import OptimizerConfig
from .train import TrainSettings

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
RESOLVED_RECIPE = "recipe.yaml"


class RecipeError(ValueError):
    """A recipe file or override is unreadable, has an unknown / misspelt key or a value of the wrong type."""


@dataclass
class CreateSpec:
    """A new checkpoint (robovlms_policy.vla.init_checkpoint.create_checkpoint): tiny random, or from a local
    pretrained VLM directory (nothing downloads)."""

    backbone: str
    structure: str = "policy_head"
    policy_head: str = "lstm"
    tiny: bool = True
    pretrained: Path | None = None
    embodiment: str = "kinova"
    camera_names: list[str] = field(default_factory=lambda: ["static", "wrist"])
    image_size: int = 32
    window: int = 16
    chunk: int = 10
    proprio_layout: str = ""  # e.g. ee_pose_gripper; "" = no proprioception
    image_readout: int = 0  # policy_head: VLAConfig.image_readout (0: the head reads [LRN] only)
    backbone_changes: dict[str, Any] = field(default_factory=dict)
    # A byte-level BPE tokenizer learnt from instructions: "twin" (the twin's training instructions) or a text
    # file of instructions, one per line; "" keeps the backbone's tokenizer (tiny: bytes).
    bpe_corpus: str = ""
    bpe_merges: int = 200
    seed: int = 0


@dataclass
class InitSpec:
    checkpoint: Path | None = None  # a checkpoint directory to start from
    create: CreateSpec | None = None  # or a new one, written to RUN/init

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (self.create is None):
            raise RecipeError("init: give exactly one of checkpoint (a directory) or create (a new checkpoint)")


@dataclass
class SourceSpec:
    path: Path
    weight: float = 1.0  # relative sampling weight of this source's rows
    # An Open X-Embodiment mixture (robovlms_training.oxe.mixtures.MIXTURES): ``path`` is then a TFDS data
    # directory holding its datasets, each weighted by the mixture's weight x ``weight``.
    mixture: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise RecipeError(f"data: weight of {self.path} must be finite and > 0, got {self.weight}")


@dataclass
class FinetuneSpec:
    """Start from a checkpoint trained on another embodiment (init.checkpoint): keep the backbone, keep or
    re-initialise the action head, act as ``embodiment`` with the target data's action statistics."""

    embodiment: str
    head: str = "keep"  # keep | reinit

    def __post_init__(self) -> None:
        if self.head not in ("keep", "reinit"):
            raise RecipeError(f"finetune.head: {self.head!r} is not one of ['keep', 'reinit']")


@dataclass
class Recipe:
    init: InitSpec
    data: list[SourceSpec]
    train: TrainSettings = field(default_factory=TrainSettings)
    optim: OptimizerConfig = field(default_factory=OptimizerConfig)
    finetune: FinetuneSpec | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise RecipeError("data: needs at least one source")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def load_recipe(path: str | Path, overrides: Sequence[str] = (), values: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe in ``path`` (a file, or a name under training/recipes/) with ``key.path=value`` overrides,
    then ``values`` (key path -> value, e.g. a sweep trial's choice)."""
    path = resolve_recipe_path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RecipeError(f"{path}: cannot read the recipe: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections (init, data, train, optim, finetune)")
    try:
        for override in overrides:
            apply_override(data, override)
        for key, value in (values or {}).items():
            set_value(data, key, value)
        return build(Recipe, data, "")
    except RecipeError as err:
        raise RecipeError(f"{path}: {err}") from err


def resolve_recipe_path(path: str | Path) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    named = RECIPES_DIR / f"{path}.yaml"
    if named.is_file():
        return named
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
    raise RecipeError(f"recipe {path} is neither a file nor one of training/recipes/: {known}")


def apply_override(data: dict, override: str) -> None:
    """``train.max_steps=10`` -> data["train"]["max_steps"] = 10 (the value parsed as YAML)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {override!r} is not KEY.PATH=VALUE")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise RecipeError(f"override {override!r}: the value is not YAML: {err}") from err
    set_value(data, key.strip(), value)


def set_value(data: dict, key: str, value: Any) -> None:
    """data[a][b] = value for the key path ``a.b`` (missing sections are created; checked when built)."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"{key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def recipe_text(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every default filled in); load_recipe reads it back unchanged."""
    return ("# resolved recipe: robovlms-train fit --config THIS_FILE --out NEW_RUN\n"
            + yaml.safe_dump(recipe.to_dict(), sort_keys=False))


def build(cls: type, data: Any, where: str) -> Any:
    """``data`` (from YAML) as an instance of ``cls``, a dataclass; strict about keys and types."""
    if not isinstance(data, dict):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise RecipeError(f"{_join(where, key)}: unknown key{hint}; known keys: {sorted(fields)}")
    missing = [name for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"{where or 'recipe'}: missing key(s) {missing}")
    values = {name: _value(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**values)
    except RecipeError:
        raise
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{where or 'recipe'}: {err}") from err


def _value(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise RecipeError(f"{where}: must not be null")
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _value(option, value, where)
            except RecipeError as err:
                errors.append(str(err))
        raise RecipeError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {options}")
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return {k: _value(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else dict(value)
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Path:  # paths are expanded here, once: ~/datasets/... works in every path field
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
    else:
        raise RecipeError(f"{where}: unsupported type {hint}")
    raise RecipeError(f"{where}: expected {hint.__name__}, got {value!r}")


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _plain(value: Any) -> Any:
    """asdict output with tuples as lists and paths as strings, so YAML writes plain data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value

