"""MoonDream release directories (the trust_remote_code layout) load without running their code, and the
converted backbone computes what MoonDream computes.

The directories here are tiny MoonDream 2 releases written tensor by tensor under MoonDream's names. Each test
compares the converted transformers modules with a plain-torch reference of MoonDream's forward pass, written
below from the release's architecture (fused qkv, linear patch embedding, [global, crop] projector input,
parallel Phi blocks with partial rotary embeddings)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from robovlms_policy.vla.backbones.base import BackboneLoadError
from robovlms_policy.vla.backbones.registry import get_backbone_class
from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.tokenizer import TINY_VOCAB_SIZE, TOKENIZER_FILE, build_tiny_tokenizer

V_WIDTH, V_LAYERS, V_MLP, V_HEADS, PATCH, GRID = 32, 2, 48, 16, 14, 3
T_WIDTH, T_LAYERS, T_MLP, T_HEADS, PROJ_HIDDEN = 64, 2, 96, 4, 80
ROTARY_FRACTION, ROPE_BASE = 0.5, 10000.0
IMAGE = PATCH * GRID


def _release_tensors(concat_features: bool, seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    t = {}

    def linear(name, n_out, n_in):
        t[name + ".weight"], t[name + ".bias"] = rnd(n_out, n_in), rnd(n_out)

    def norm(name, width):
        t[name + ".weight"], t[name + ".bias"] = 1 + rnd(width), rnd(width)

    v = "vision_encoder.encoder.model.visual."
    linear(v + "patch_embed.linear", V_WIDTH, 3 * PATCH * PATCH)
    t[v + "pos_embed"] = rnd(1, GRID * GRID, V_WIDTH)
    for i in range(V_LAYERS):
        b = f"{v}blocks.{i}."
        norm(b + "norm1", V_WIDTH)
        linear(b + "attn.qkv", 3 * V_WIDTH, V_WIDTH)
        linear(b + "attn.proj", V_WIDTH, V_WIDTH)
        norm(b + "norm2", V_WIDTH)
        linear(b + "mlp.fc1", V_MLP, V_WIDTH)
        linear(b + "mlp.fc2", V_WIDTH, V_MLP)
    norm(v + "norm", V_WIDTH)
    linear("vision_encoder.projection.mlp.fc1", PROJ_HIDDEN, (2 if concat_features else 1) * V_WIDTH)
    linear("vision_encoder.projection.mlp.fc2", T_WIDTH, PROJ_HIDDEN)
    t["text_model.transformer.embd.wte.weight"] = rnd(TINY_VOCAB_SIZE, T_WIDTH)
    for i in range(T_LAYERS):
        b = f"text_model.transformer.h.{i}."
        norm(b + "ln", T_WIDTH)
        linear(b + "mixer.Wqkv", 3 * T_WIDTH, T_WIDTH)
        linear(b + "mixer.out_proj", T_WIDTH, T_WIDTH)
        linear(b + "mlp.fc1", T_MLP, T_WIDTH)
        linear(b + "mlp.fc2", T_WIDTH, T_MLP)
    norm("text_model.lm_head.ln", T_WIDTH)
    linear("text_model.lm_head.linear", TINY_VOCAB_SIZE, T_WIDTH)
    linear("region_model.coordinate_encoder", T_WIDTH, 256)  # the detection head the loader drops
    return t


def _write_release(directory: Path, tensors: dict[str, torch.Tensor], compiled_names: bool = False) -> Path:
    directory.mkdir(parents=True)
    if compiled_names:  # torch.compile'd releases: "text_model._orig_mod.transformer..."
        tensors = {k.replace("text_model.", "text_model._orig_mod."): v for k, v in tensors.items()}
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(directory / "model.safetensors"))
    config = {"architectures": ["Moondream"], "model_type": "moondream1", "torch_dtype": "float16",
              "auto_map": {"AutoConfig": "configuration_moondream.MoondreamConfig",
                           "AutoModelForCausalLM": "moondream.Moondream"},
              "text_config": {"model_type": "phi", "num_attention_heads": T_HEADS}}
    (directory / "config.json").write_text(json.dumps(config))
    # The remote code a trust_remote_code load would import: running it must fail the test.
    for module in ("configuration_moondream.py", "moondream.py"):
        (directory / module).write_text("raise RuntimeError('remote code was executed')\n")
    build_tiny_tokenizer().save(str(directory / TOKENIZER_FILE))
    return directory


def _halves(tensors):  # what the loader reads back from the float16 file
    return {k: v.half().float() for k, v in tensors.items()}


def _layer_norm(t, name, h):
    return F.layer_norm(h, h.shape[-1:], t[name + ".weight"], t[name + ".bias"], eps=1e-5)


def _reference_vision(t, pixels, concat_features):
    v = "vision_encoder.encoder.model.visual."
    n = pixels.shape[0]
    patches = pixels.reshape(n, 3, GRID, PATCH, GRID, PATCH).permute(0, 2, 4, 1, 3, 5)
    x = F.linear(patches.reshape(n, GRID * GRID, -1), t[v + "patch_embed.linear.weight"],
                 t[v + "patch_embed.linear.bias"]) + t[v + "pos_embed"]

    for i in range(V_LAYERS):
        b = f"{v}blocks.{i}."
        qkv = F.linear(_layer_norm(t, b + "norm1", x), t[b + "attn.qkv.weight"], t[b + "attn.qkv.bias"])
        q, k, val = qkv.reshape(n, -1, 3, V_HEADS, V_WIDTH // V_HEADS).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, val).transpose(1, 2).reshape(n, -1, V_WIDTH)
        x = x + F.linear(attn, t[b + "attn.proj.weight"], t[b + "attn.proj.bias"])
        hidden = F.gelu(F.linear(_layer_norm(t, b + "norm2", x), t[b + "mlp.fc1.weight"], t[b + "mlp.fc1.bias"]),
                        approximate="tanh")
        x = x + F.linear(hidden, t[b + "mlp.fc2.weight"], t[b + "mlp.fc2.bias"])
    x = _layer_norm(t, v + "norm", x)
    if concat_features:  # one 378-px crop: the crop features are the global features
        x = torch.cat([x, x], dim=-1)
    p = "vision_encoder.projection.mlp."
    hidden = F.gelu(F.linear(x, t[p + "fc1.weight"], t[p + "fc1.bias"]), approximate="tanh")
    return F.linear(hidden, t[p + "fc2.weight"], t[p + "fc2.bias"])


def _rotate(x, positions):
    dim = int(ROTARY_FRACTION * x.shape[-1])
    inv_freq = 1.0 / ROPE_BASE ** (torch.arange(0, dim, 2).float() / dim)
    angles = torch.outer(positions.float(), inv_freq)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    rot, rest = x[..., :dim], x[..., dim:]
    half = torch.cat([-rot[..., dim // 2:], rot[..., :dim // 2]], dim=-1)
    return torch.cat([rot * cos + half * sin, rest], dim=-1)


def _reference_text(t, embeds):
    """MoonDream's Phi: parallel attention + MLP on one LayerNorm, partial rotary, LayerNorm + biased head."""
    b_size, length, _ = embeds.shape
    positions = torch.arange(length)
    head_dim = T_WIDTH // T_HEADS

    x = embeds
    for i in range(T_LAYERS):
        b = f"text_model.transformer.h.{i}."
        h = _layer_norm(t, b + "ln", x)
        q, k, val = (part.reshape(b_size, length, T_HEADS, head_dim).transpose(1, 2)
                     for part in F.linear(h, t[b + "mixer.Wqkv.weight"], t[b + "mixer.Wqkv.bias"]).chunk(3, -1))
        scores = _rotate(q, positions) @ _rotate(k, positions).transpose(-1, -2) / math.sqrt(head_dim)
        scores = scores.masked_fill(torch.ones(length, length).triu(1).bool(), float("-inf"))
        attn = (scores.softmax(-1) @ val).transpose(1, 2).reshape(b_size, length, T_WIDTH)
        mlp = F.linear(F.gelu(F.linear(h, t[b + "mlp.fc1.weight"], t[b + "mlp.fc1.bias"]), approximate="tanh"),
                       t[b + "mlp.fc2.weight"], t[b + "mlp.fc2.bias"])
        x = x + F.linear(attn, t[b + "mixer.out_proj.weight"], t[b + "mixer.out_proj.bias"]) + mlp
    final = _layer_norm(t, "text_model.lm_head.ln", x)
    return final, F.linear(final, t["text_model.lm_head.linear.weight"], t["text_model.lm_head.linear.bias"])


@pytest.mark.parametrize("concat_features, compiled_names", [(True, False), (False, True)])
def test_release_loads_without_its_code_and_matches_moondream(tmp_path, concat_features, compiled_names):
    tensors = _release_tensors(concat_features)
    release = _write_release(tmp_path / "moondream2", tensors, compiled_names)
    backbone = get_backbone_class("moondream").from_pretrained(release).eval()
    t = _halves(tensors)
    assert backbone.model.config.vision_config.image_size == IMAGE
    pixels = torch.rand(2, 3, IMAGE, IMAGE) * 2 - 1
    embeds = torch.randn(2, 7, T_WIDTH)
    with torch.no_grad():
        tokens = backbone.encode_images(pixels)
        hidden, _ = backbone.language_forward(embeds, torch.ones(2, 7, dtype=torch.long),
                                              torch.arange(7).expand(2, 7))
        logits = backbone.lm_head(hidden)
    ref_hidden, ref_logits = _reference_text(t, embeds)
    torch.testing.assert_close(tokens, _reference_vision(t, pixels, concat_features), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(hidden, ref_hidden, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(logits, ref_logits, atol=2e-5, rtol=1e-4)
    assert torch.equal(backbone.word_embedding.weight, t["text_model.transformer.embd.wte.weight"])


def test_checkpoint_from_a_release_keeps_moondream_modules(tmp_path):
    tensors = _release_tensors(concat_features=True)
    release = _write_release(tmp_path / "moondream2", tensors)
    config = create_checkpoint(tmp_path / "ckpt", "moondream", "one_step_discrete", tiny=False, pretrained=release,
                               window=2, chunk=2)
    assert config.image_size == IMAGE and config.image_mean == [0.5] * 3
    model, _, _ = load_checkpoint(tmp_path / "ckpt")
    assert model.backbone.model.model.multi_modal_projector.linear_1.out_features == PROJ_HIDDEN
    t = _halves(tensors)
    assert torch.equal(model.backbone.lm_head.bias, t["text_model.lm_head.linear.bias"])
    pixels = torch.rand(1, 3, IMAGE, IMAGE) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.backbone.encode_images(pixels), _reference_vision(t, pixels, True),
                                   atol=2e-5, rtol=1e-4)


def _expect_error(tmp_path, tensors, message):
    release = _write_release(tmp_path / "release", tensors)
    with pytest.raises(BackboneLoadError, match=message):
        get_backbone_class("moondream").from_pretrained(release)


def test_missing_tensor_is_named(tmp_path):
    tensors = _release_tensors(True)
    del tensors["text_model.transformer.h.1.mixer.out_proj.bias"]
    _expect_error(tmp_path, tensors, r"lack tensor 'text_model\.transformer\.h\.1\.mixer\.out_proj\.bias'")


def test_unmapped_tensor_is_named_not_ignored(tmp_path):
    tensors = _release_tensors(True)
    tensors["text_model.transformer.h.0.mixer.rotary_scale"] = torch.ones(4)
    _expect_error(tmp_path, tensors, r"does not map: text_model\.transformer\.h\.0\.mixer\.rotary_scale")


def test_other_remote_code_layouts_are_refused_naming_the_supported_one(tmp_path):
    tensors = {"model.vision.patch_emb.weight": torch.zeros(4, 4), "model.text.wte": torch.zeros(8, 4)}
    _expect_error(tmp_path, tensors, r"not in the MoonDream 2 layout.*model\.text\.wte")


def test_projector_input_width_mismatch_is_explained(tmp_path):
    tensors = _release_tensors(True)
    tensors["vision_encoder.projection.mlp.fc1.weight"] = torch.zeros(PROJ_HIDDEN, 3 * V_WIDTH)
    _expect_error(tmp_path, tensors, "projector input width 96")


def test_inconsistent_tensor_shape_is_named(tmp_path):
    tensors = _release_tensors(True)
    tensors["text_model.transformer.h.1.mlp.fc2.weight"] = torch.zeros(T_WIDTH, T_MLP + 1)
    _expect_error(tmp_path, tensors, r"(?s)inconsistent.*layers\.1\.mlp\.fc2\.weight")


def test_unreadable_weights_and_config_files_are_named(tmp_path):
    release = _write_release(tmp_path / "release", _release_tensors(True))
    (release / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BackboneLoadError, match="model.safetensors is not a readable safetensors file"):
        get_backbone_class("moondream").from_pretrained(release)
    (release / "config.json").write_text("{not json")
    with pytest.raises(BackboneLoadError, match="config.json is not valid JSON"):
        get_backbone_class("moondream").from_pretrained(release)
