"""VLAConfig: everything needed to rebuild a VLA policy besides its weights. Stored as config.json in a checkpoint.

Validation is strict: an unknown key, a missing key or a value of the wrong type or range raises ConfigError
naming the field, never a silent default."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
STRUCTURES = ("one_step_continuous", "one_step_discrete", "interleaved", "policy_head")
POLICY_HEADS = ("lstm", "gpt", "mlp")


class ConfigError(ValueError):
    """A VLA config field is unknown, missing or invalid; the message names the field."""


@dataclass
class VLAConfig:
    backbone: str
    backbone_config: dict[str, Any]
    action_stats: dict[str, list[float]]  # of the embodiment the policy acts as
    structure: str = "policy_head"
    policy_head: str = "lstm"
    embodiment: str = "kinova"
    image_size: int = 224
    image_mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    image_std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    camera_names: list[str] = field(default_factory=lambda: ["static", "wrist"])
    window: int = 16
    chunk: int = 10
    n_bins: int = 256
    proprio_dim: int = 0
    proprio_layout: str = ""  # how the robot state is assembled (vla.proprio.PROPRIO_LAYOUTS); "" = none
    proprio_stats: dict[str, list[float]] | None = None  # mean / std the proprioception is standardised with
    # Action statistics of every embodiment the weights were trained on (a cross-embodiment mixture); a
    # fine-tune to one of them can start from its entry. None: trained on ``embodiment`` only.
    embodiment_stats: dict[str, dict[str, list[float]]] | None = None
    max_instruction_tokens: int = 64
    # policy_head only: > 0 adds to each frame's [LRN] feature a linear readout of the language model's outputs
    # at that frame's image tokens, each first projected to this many values. It gives the head a direct path to
    # where things are in the image, which the [LRN] token's attention alone did not learn to carry (README).
    image_readout: int = 0
    image_start_id: int | None = None
    image_end_id: int | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from .action_codec import ActionStatistics
        from .backbones.registry import BACKBONES
        from .embodiments import EMBODIMENTS

        _check(self.format_version == FORMAT_VERSION, "format_version",
               f"is {self.format_version!r}, this code reads version {FORMAT_VERSION}")
        _check(self.structure in STRUCTURES, "structure", f"{self.structure!r} is not one of {STRUCTURES}")
        _check(self.policy_head in POLICY_HEADS, "policy_head", f"{self.policy_head!r} is not one of {POLICY_HEADS}")
        _check(self.backbone in BACKBONES, "backbone", f"{self.backbone!r} is not one of {sorted(BACKBONES)}")
        _check(isinstance(self.backbone_config, dict) and bool(self.backbone_config), "backbone_config",
               "must be a non-empty transformers config dict")
        _check(self.embodiment in EMBODIMENTS, "embodiment", f"{self.embodiment!r} is not one of {sorted(EMBODIMENTS)}")
        try:
            ActionStatistics.from_dict(self.action_stats)
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"action_stats: {err}") from err
        self._validate_embodiment_stats()
        for name, low in (("image_size", 8), ("window", 1), ("chunk", 1), ("n_bins", 2), ("max_instruction_tokens", 1)):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
                   f"must be an integer >= {low}, got {value!r}")
        _check(isinstance(self.proprio_dim, int) and self.proprio_dim >= 0, "proprio_dim", "must be an integer >= 0")
        self._validate_image_readout()
        self._validate_proprio()
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            _check(isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value),
                   name, f"must be a list of 3 numbers, got {value!r}")
        _check(all(v > 0 for v in self.image_std), "image_std", "must be positive")
        _check(isinstance(self.camera_names, list) and len(self.camera_names) >= 1
               and all(isinstance(c, str) and c for c in self.camera_names)
               and len(set(self.camera_names)) == len(self.camera_names), "camera_names",
               f"must be a non-empty list of distinct names, got {self.camera_names!r}")
        for name in ("image_start_id", "image_end_id"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value >= 0), name,
                   f"must be null or a token id, got {value!r}")

    def _validate_image_readout(self) -> None:
        from .backbones.registry import BACKBONES

        _check(isinstance(self.image_readout, int) and not isinstance(self.image_readout, bool)
               and self.image_readout >= 0, "image_readout", f"must be an integer >= 0, got {self.image_readout!r}")
        if self.image_readout:
            _check(self.structure == "policy_head", "image_readout",
                   f"is for the policy_head structure, this config is {self.structure}")
            _check(not BACKBONES[self.backbone].cross_attention, "image_readout",
                   f"needs image tokens in the sequence; {self.backbone} attends to its images by cross-attention")

    def _validate_embodiment_stats(self) -> None:
        from .action_codec import ActionStatistics
        from .embodiments import EMBODIMENTS

        if self.embodiment_stats is None:
            return
        _check(isinstance(self.embodiment_stats, dict) and self.embodiment in self.embodiment_stats,
               "embodiment_stats", f"must map embodiment names to statistics, {self.embodiment!r} included")
        # The policy acts with action_stats: the mixture's entry for its embodiment must be the same numbers.
        _check(self.embodiment_stats[self.embodiment] == self.action_stats, "embodiment_stats",
               f"its {self.embodiment!r} entry differs from action_stats")
        for name, stats in self.embodiment_stats.items():
            _check(name in EMBODIMENTS, "embodiment_stats", f"{name!r} is not one of {sorted(EMBODIMENTS)}")
            try:
                ActionStatistics.from_dict(stats)
            except (KeyError, TypeError, ValueError) as err:
                raise ConfigError(f"embodiment_stats.{name}: {err}") from err

    def _validate_proprio(self) -> None:
        from .proprio import PROPRIO_LAYOUTS, ProprioNormalizer

        if self.proprio_layout:
            _check(self.proprio_layout in PROPRIO_LAYOUTS, "proprio_layout",
                   f"{self.proprio_layout!r} is not one of {sorted(PROPRIO_LAYOUTS)}")
            _check(PROPRIO_LAYOUTS[self.proprio_layout] == self.proprio_dim, "proprio_dim",
                   f"layout {self.proprio_layout!r} has {PROPRIO_LAYOUTS[self.proprio_layout]} values, "
                   f"proprio_dim is {self.proprio_dim}")
        if self.proprio_stats is not None:
            try:
                stats = ProprioNormalizer.from_dict(self.proprio_stats)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"proprio_stats: {err}") from err
            _check(stats.mean.shape == (self.proprio_dim,), "proprio_stats",
                   f"has {stats.mean.shape[0]} values, proprio_dim is {self.proprio_dim}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "VLAConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        required.append("format_version")  # a stored config must say which format it is
        missing = [name for name in required if name not in data]
        if missing:
            raise ConfigError(f"missing config field(s) {missing}")
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(str(err)) from err


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")
