"""Read a MoonDream release directory (the trust_remote_code layout) without running its code.

MoonDream 2 releases ship ``config.json`` (``model_type`` "moondream1", an ``auto_map`` into the directory's
own Python files) and safetensors weights named ``vision_encoder.*``, ``text_model.*`` and ``region_model.*``.
The architecture behind those names is a SigLIP-style ViT, a two-layer GELU projector and a Phi decoder. This
module maps the tensors onto transformers' SigLIP + Phi through the LLaVA class, so loading a release never
imports the directory's Python files.

What changes on the way:
* fused ``qkv`` / ``Wqkv`` projections are split into q, k and v;
* the linear patch embedding becomes SigLIP's convolution (both flatten a patch as channel, row, column);
* MoonDream feeds its projector the global image features concatenated with features of image crops. At the
  single 378 px crop a VLA uses, both halves are the same features, so the two halves of the projector's first
  weight are summed;
* ``region_model.*`` (MoonDream's box-detection head) is dropped, since a VLA backbone does not use it.

Any other tensor that does not fit is an error that names it.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import LlavaConfig

from .base import BackboneLoadError

VISION = "vision_encoder.encoder.model.visual."
PROJECTION = "vision_encoder.projection.mlp."
TEXT = "text_model.transformer."
TEXT_HEAD = "text_model.lm_head."
DROPPED_PREFIXES = ("region_model.",)
# Per-block parts, MoonDream name -> transformers name (SigLIP encoder layer, Phi decoder layer). A fused
# q/k/v projection maps onto "self_attn" and is split there.
VISION_LAYER = (("attn.qkv", "self_attn"), ("attn.proj", "self_attn.out_proj"), ("norm1", "layer_norm1"),
                ("norm2", "layer_norm2"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2"))
TEXT_LAYER = (("ln", "input_layernorm"), ("mixer.Wqkv", "self_attn"), ("mixer.out_proj", "self_attn.dense"),
              ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2"))
# MoonDream's vision attention has 16 heads; its code fixes that and its config.json does not record it.
VISION_HEADS = 16
# MoonDream's Phi configuration defaults; config.json's text_config usually records only model_type.
TEXT_DEFAULTS = {"num_attention_heads": 32, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
                 "layer_norm_eps": 1e-5, "hidden_act": "gelu_new", "max_position_embeddings": 2048}


def release_config(directory: str | Path) -> dict | None:
    """config.json of a directory that names remote code (``auto_map``), the layout this module reads; None for
    any other directory."""
    config_file = Path(directory) / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise BackboneLoadError(f"{config_file} is not valid JSON: {err}") from None
    return config if isinstance(config, dict) and "auto_map" in config else None


def _read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise BackboneLoadError(f"MoonDream directory {directory} has no *.safetensors weights")
    tensors = {}
    for file in files:
        try:
            with safe_open(file, framework="pt") as reader:
                for name in reader.keys():
                    # torch.compile'd releases carry "._orig_mod" in some names.
                    tensors[name.replace("._orig_mod", "")] = reader.get_tensor(name).float()
        except SafetensorError as err:
            raise BackboneLoadError(f"{file} is not a readable safetensors file: {err}") from None
    return tensors


def _layer_count(tensors: dict[str, torch.Tensor], pattern: str) -> int:
    indices = {int(m.group(1)) for name in tensors if (m := re.fullmatch(pattern, name))}
    if not indices or indices != set(range(len(indices))):
        raise BackboneLoadError(f"MoonDream weights: layers matching {pattern!r} are missing or not numbered 0..n-1")
    return len(indices)


class _Tensors:
    """Takes each source tensor exactly once, so leftovers can be reported by name."""

    def __init__(self, tensors: dict[str, torch.Tensor], directory: Path) -> None:
        self.tensors, self.directory = tensors, directory

    def take(self, name: str) -> torch.Tensor:
        if name not in self.tensors:
            raise BackboneLoadError(f"MoonDream weights in {self.directory} lack tensor {name!r}")
        return self.tensors.pop(name)

    def linear(self, source: str, target: str, out: dict[str, torch.Tensor]) -> None:
        out[target + ".weight"] = self.take(source + ".weight")
        out[target + ".bias"] = self.take(source + ".bias")

    def split_qkv(self, source: str, target: str, out: dict[str, torch.Tensor]) -> None:
        for part in ("weight", "bias"):
            for name, chunk in zip(("q_proj", "k_proj", "v_proj"), self.take(f"{source}.{part}").chunk(3, dim=0)):
                out[f"{target}.{name}.{part}"] = chunk.clone()  # own storage: safetensors refuses shared

    def layers(self, source: str, target: str, count: int, table: tuple[tuple[str, str], ...],
               out: dict[str, torch.Tensor]) -> None:
        """Map ``count`` blocks; ``source``/``target`` hold "{}" for the layer index, the table their parts."""
        for i in range(count):
            for src_part, dst_part in table:
                mapper = self.split_qkv if dst_part == "self_attn" else self.linear
                mapper(source.format(i) + src_part, target.format(i) + dst_part, out)


def _vision_state(src: _Tensors, layers: int) -> tuple[dict[str, torch.Tensor], dict]:
    out: dict[str, torch.Tensor] = {}
    dst = "model.vision_tower."
    pos = src.take(VISION + "pos_embed")  # (1, positions, width)
    width, positions = pos.shape[-1], pos.shape[-2]
    patch_weight = src.take(VISION + "patch_embed.linear.weight")  # (width, 3 * patch * patch)
    patch = math.isqrt(patch_weight.shape[1] // 3)
    grid = math.isqrt(positions)
    if 3 * patch * patch != patch_weight.shape[1] or grid * grid != positions:
        raise BackboneLoadError(f"MoonDream patch embedding {tuple(patch_weight.shape)} / position table "
                                f"{tuple(pos.shape)} do not describe square patches on a square grid")
    out[dst + "embeddings.patch_embedding.weight"] = patch_weight.reshape(width, 3, patch, patch)
    out[dst + "embeddings.patch_embedding.bias"] = src.take(VISION + "patch_embed.linear.bias")
    out[dst + "embeddings.position_embedding.weight"] = pos.reshape(positions, width)
    src.layers(f"{VISION}blocks.{{}}.", f"{dst}encoder.layers.{{}}.", layers, VISION_LAYER, out)
    src.linear(VISION + "norm", dst + "post_layernorm", out)
    config = {"model_type": "siglip_vision_model", "hidden_size": width, "num_hidden_layers": layers,
              "intermediate_size": out[f"{dst}encoder.layers.0.mlp.fc1.weight"].shape[0],
              "num_attention_heads": VISION_HEADS, "image_size": grid * patch, "patch_size": patch,
              "layer_norm_eps": 1e-5, "hidden_act": "gelu_pytorch_tanh", "vision_use_head": False}
    return out, config


def _projector_state(src: _Tensors, width: int) -> dict[str, torch.Tensor]:
    first = src.take(PROJECTION + "fc1.weight")
    if first.shape[1] == 2 * width:  # [global features, crop features]: identical for one crop
        first = first[:, :width] + first[:, width:]
    elif first.shape[1] != width:
        raise BackboneLoadError(f"MoonDream projector input width {first.shape[1]} fits neither the vision width "
                                f"{width} nor twice it")
    dst = "model.multi_modal_projector."
    out = {dst + "linear_1.weight": first, dst + "linear_1.bias": src.take(PROJECTION + "fc1.bias")}
    src.linear(PROJECTION + "fc2", dst + "linear_2", out)
    return out


def _text_state(src: _Tensors, layers: int, text_config: dict) -> tuple[dict[str, torch.Tensor], dict]:
    out: dict[str, torch.Tensor] = {}
    dst = "model.language_model."
    embed = src.take(TEXT + "embd.wte.weight")
    out[dst + "embed_tokens.weight"] = embed
    src.layers(f"{TEXT}h.{{}}.", f"{dst}layers.{{}}.", layers, TEXT_LAYER, out)
    src.linear(TEXT_HEAD + "ln", dst + "final_layernorm", out)
    src.linear(TEXT_HEAD + "linear", "lm_head", out)
    settings = {key: text_config.get(key, default) for key, default in TEXT_DEFAULTS.items()}
    config = {"model_type": "phi", "vocab_size": embed.shape[0], "hidden_size": embed.shape[1],
              "intermediate_size": out[f"{dst}layers.0.mlp.fc1.weight"].shape[0], "num_hidden_layers": layers,
              "num_attention_heads": settings["num_attention_heads"], "layer_norm_eps": settings["layer_norm_eps"],
              "hidden_act": settings["hidden_act"], "max_position_embeddings": settings["max_position_embeddings"],
              "rope_parameters": {"rope_type": "default", "rope_theta": settings["rope_theta"],
                                  "partial_rotary_factor": settings["partial_rotary_factor"]},
              "tie_word_embeddings": False}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in text_config:
            config[key] = text_config[key]
    return out, config


def convert_release(directory: str | Path, raw: dict) -> tuple[LlavaConfig, dict[str, torch.Tensor]]:
    """The LLaVA-class config (with MoonDream's projector width and biased LM head recorded) and state dict of
    the release in ``directory``, whose config.json is ``raw``."""
    directory = Path(directory)
    tensors = _read_tensors(directory)
    if VISION + "pos_embed" not in tensors or TEXT + "embd.wte.weight" not in tensors:
        sample = ", ".join(sorted(tensors)[:3])
        raise BackboneLoadError(
            f"{directory} is a trust_remote_code checkpoint, but not in the MoonDream 2 layout this loader reads "
            f"(tensors under {VISION!r} and {TEXT!r}); it has e.g. {sample}")
    src = _Tensors(tensors, directory)
    vision_layers = _layer_count(tensors, re.escape(VISION) + r"blocks\.(\d+)\.norm1\.weight")
    text_layers = _layer_count(tensors, re.escape(TEXT) + r"h\.(\d+)\.ln\.weight")
    vision_state, vision_config = _vision_state(src, vision_layers)
    text_state, text_config = _text_state(src, text_layers, raw.get("text_config") or {})
    state = {**vision_state, **_projector_state(src, vision_config["hidden_size"]), **text_state}
    leftover = sorted(name for name in src.tensors if not name.startswith(DROPPED_PREFIXES))
    if leftover:
        raise BackboneLoadError(f"MoonDream weights in {directory} have tensors this loader does not map: "
                                f"{', '.join(leftover[:5])}" + (" ..." if len(leftover) > 5 else ""))
    tokens_per_image = (vision_config["image_size"] // vision_config["patch_size"]) ** 2
    config = LlavaConfig(vision_config=vision_config, text_config=text_config, vision_feature_layer=-1,
                         vision_feature_select_strategy="full", projector_hidden_act="gelu_pytorch_tanh",
                         image_seq_length=tokens_per_image, tie_word_embeddings=False)
    config.projector_intermediate_size = int(state["model.multi_modal_projector.linear_1.weight"].shape[0])
    config.lm_head_bias = True
    return config, state
