"""VLAConfig.image_readout: the policy head also reads the LM's outputs at each frame's image tokens."""
from __future__ import annotations

import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint, save_checkpoint
from robovlms_policy.vla.config import ConfigError
from robovlms_policy.vla.tokenizer import build_tiny_tokenizer
from vla_helpers import CAMERAS, grow_readout, prompt, tiny_config, tiny_model

SEQUENCE_BACKBONES = ("paligemma", "kosmos2", "llava", "qwen2vl", "moondream")


@pytest.mark.parametrize("backbone", SEQUENCE_BACKBONES)
def test_ticks_match_the_training_pass_and_survive_save_load(backbone, tmp_path):
    model = grow_readout(tiny_model(backbone, "policy_head", seed=2, image_readout=3))
    window, s = model.config.window, model.config.image_size
    pixels = torch.randn(1, window + 2, CAMERAS, 3, s, s, generator=torch.Generator().manual_seed(4))
    p = prompt(["lift the red block"])
    save_checkpoint(model, model.config, build_tiny_tokenizer(), tmp_path)
    loaded, config, _ = load_checkpoint(tmp_path)
    assert config.image_readout == 3
    with torch.no_grad():
        history = []
        for t in range(pixels.shape[1]):
            history = (history + [loaded.history_item(loaded.encode_frame(pixels[:, t]), p)])[-window:]
            tick = loaded.predict(history, p)
            arm, _ = model(pixels[:, max(0, t + 1 - window):t + 1], p)
            torch.testing.assert_close(tick.arm, arm[:, -1], rtol=1e-4, atol=1e-5)


def test_the_readout_sees_which_image_token_holds_what():
    """Swapping two image tokens' outputs changes the readout (a mean over the tokens would not); the feature is
    [LRN] plus the readout of the outputs at the image positions counted from the text; gradients reach the
    readout and the vision tower. Without the option the model has no readout."""
    model = grow_readout(tiny_model("paligemma", "policy_head", seed=1, image_readout=4))
    assert tiny_model("paligemma", "policy_head", seed=1).image_readout is None
    s = model.config.image_size
    frame = model.encode_frame(torch.zeros(1, CAMERAS, 3, s, s))
    p = prompt(["lift the red block"])
    with torch.no_grad():
        hidden = model.run_language(model.build_sequence(p, [frame], lrn_after=True))
        outputs = hidden[:, [p.ids.shape[1] + i for i in frame.vision_positions]]  # the frame follows the text
        swapped = outputs.clone()
        swapped[:, [0, 1]] = outputs[:, [1, 0]]
        assert outputs.shape[1] == model.image_readout.tokens
        assert not torch.allclose(model.image_readout(outputs), model.image_readout(swapped))
        lrn = hidden[:, -1]
        torch.testing.assert_close(model.frame_feature(p, frame), lrn + model.image_readout(outputs))
    loss = model.train().frame_feature(p, frame).square().sum()
    loss.backward()
    assert model.image_readout.per_token.weight.grad.abs().sum() > 0
    assert next(model.backbone.vision_tower.parameters()).grad is not None


def test_a_new_readout_adds_nothing_until_it_trains():
    """Zero-initialised: the head first reads [LRN] alone; one optimiser step makes the readout contribute."""
    model = tiny_model("paligemma", "policy_head", seed=3, image_readout=4).train()
    s = model.config.image_size
    pixels = torch.rand(1, CAMERAS, 3, s, s, generator=torch.Generator().manual_seed(5))
    p = prompt(["push the blue block left"])
    frame = model.encode_frame(pixels)
    torch.testing.assert_close(model.frame_feature(p, frame), model.lrn_feature(p, frame))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model.frame_feature(p, frame).sum().backward()
    optimiser.step()
    with torch.no_grad():
        frame = model.encode_frame(pixels)
        assert not torch.allclose(model.frame_feature(p, frame), model.lrn_feature(p, frame))


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(structure="policy_head", image_readout=-1), "image_readout: must be an integer >= 0"),
    (dict(structure="one_step_continuous", image_readout=4), "image_readout: is for the policy_head"),
])
def test_bad_readout_settings_are_refused(overrides, message):
    structure = overrides.pop("structure")
    with pytest.raises(ConfigError, match=message):
        tiny_config("paligemma", structure, **overrides)


def test_a_cross_attention_backbone_is_refused():
    with pytest.raises(ConfigError, match="idefics attends to its images by cross-attention"):
        tiny_config("idefics", "policy_head", image_readout=4)
