"""Tiny configs (LM hidden 64, 2 layers, a small vision tower, the tiny tokenizer's vocabulary) for tests, dry
runs and random checkpoints. Real architectures, just small. The vision towers are built for the requested
image size (any multiple of the 8-pixel patch), so their position tables cover every patch."""
from typing import Any

from transformers import (IdeficsConfig, Kosmos2Config, LlavaConfig, PaliGemmaConfig, Qwen2_5_VLConfig,
                          Qwen2VLConfig)

from ..tokenizer import TINY_VOCAB_SIZE

TINY_IMAGE_SIZE = 32
_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=TINY_VOCAB_SIZE, max_position_embeddings=2048, pad_token_id=0,
             bos_token_id=1, eos_token_id=2)
TINY_PATCH_SIZE = 8
_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
               patch_size=TINY_PATCH_SIZE)


def _paligemma(size: int) -> Any:
    return PaliGemmaConfig(vision_config={"model_type": "siglip_vision_model", "image_size": size, **_VISION},
                           text_config={"model_type": "gemma", "head_dim": 16, **_TEXT}, projection_dim=64,
                           image_token_id=3, vocab_size=TINY_VOCAB_SIZE)


def _llava(size: int, vision_type: str, text_type: str, strategy: str) -> Any:
    text = dict(_TEXT, model_type=text_type)
    if text_type == "phi":
        text.pop("num_key_value_heads")
    return LlavaConfig(vision_config={"model_type": vision_type, "image_size": size, **_VISION}, text_config=text,
                       vision_feature_select_strategy=strategy, vision_feature_layer=-1, image_token_id=3,
                       projector_hidden_act="gelu")


def _kosmos2(size: int) -> Any:
    return Kosmos2Config(
        text_config=dict(vocab_size=TINY_VOCAB_SIZE, embed_dim=64, layers=2, ffn_dim=128, attention_heads=4,
                         max_position_embeddings=2048, pad_token_id=0, bos_token_id=1, eos_token_id=2),
        vision_config=dict(image_size=size, **_VISION), latent_query_num=8)


def _qwen2vl(size: int, config_class: type) -> Any:
    """Qwen2-VL's vision tower has rotary positions: any image size works without a table to scale."""
    text = dict(_TEXT, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                model_type=config_class.model_type + "_text")
    vision = dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3, out_hidden_size=64, intermediate_size=64)
    return config_class(text_config=text, vision_config=vision, image_token_id=3, vision_start_token_id=6,
                        vision_end_token_id=7)


def _idefics(size: int) -> Any:
    return IdeficsConfig(
        vocab_size=TINY_VOCAB_SIZE, additional_vocab_size=0, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, cross_layer_interval=1, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, max_position_embeddings=2048, use_resampler=True,
        # Flamingo gates start at 0 (images ignored until trained); random tiny models should see their images
        # ("normal" init crashes in transformers 5.23, so the gates start open).
        alpha_initializer="ones",
        vision_config=dict(embed_dim=32, image_size=size, patch_size=TINY_PATCH_SIZE, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64),
        perceiver_config=dict(use_resampler=True, resampler_n_latents=8, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=16))


_BUILDERS = {
    "paligemma": _paligemma,
    "llava": lambda size: _llava(size, "clip_vision_model", "llama", "default"),
    "moondream": lambda size: _llava(size, "siglip_vision_model", "phi", "full"),
    "kosmos2": _kosmos2,
    "qwen2vl": lambda size: _qwen2vl(size, Qwen2VLConfig),
    "qwen2_5vl": lambda size: _qwen2vl(size, Qwen2_5_VLConfig),
    "idefics": _idefics,
}


def tiny_backbone_config(name: str, image_size: int = TINY_IMAGE_SIZE,
                         vocab_size: int = TINY_VOCAB_SIZE) -> dict[str, Any]:
    """JSON-safe transformers config dict of the tiny variant of a backbone, for square images of
    ``image_size`` pixels (a positive multiple of the patch size) and a tokenizer of ``vocab_size`` ids."""
    if name not in _BUILDERS:
        raise KeyError(f"no tiny config for backbone {name!r}; known: {sorted(_BUILDERS)}")
    if not isinstance(image_size, int) or image_size < TINY_PATCH_SIZE or image_size % TINY_PATCH_SIZE:
        raise ValueError(f"tiny image_size must be a positive multiple of {TINY_PATCH_SIZE}, got {image_size!r}")
    config = _BUILDERS[name](image_size).to_dict()
    return _with_vocab(config, vocab_size) if vocab_size != TINY_VOCAB_SIZE else config


def _with_vocab(config: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """Every vocab_size field of a (nested) config set to ``vocab_size``."""
    return {key: vocab_size if key == "vocab_size" else _with_vocab(value, vocab_size) if isinstance(value, dict)
            else value for key, value in config.items()}
