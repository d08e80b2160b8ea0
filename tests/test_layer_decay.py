"""Layer-wise learning-rate decay and label smoothing: each parameter's learning rate in the
optimiser against the decay computed by hand, and the smoothed loss against its formula."""

import pytest
import torch
from torch.nn import functional as F

from recognize import ExperimentConfig
from recognize.builder import build_model
from recognize.engine import make_optimizer
from recognize.model.layers import layer_scales
from recognize.objective import LabelObjective, make_objective


def learning_rates(model: torch.nn.Module, config: ExperimentConfig) -> dict[str, float]:
    """Each trainable parameter's name -> its group's learning rate in make_optimizer's AdamW."""
    optimizer = make_optimizer(model, config)
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: rate[id(p)] for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_each_bert_layer_trains_at_decay_times_the_one_above(meld_dir, tiny_bert, mode):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode=mode, lr=1e-3, head_lr=5e-3,
                              layer_decay=0.5)
    rates = learning_rates(build_model(config).model, config)
    expected = {"embeddings.": 1e-3 * 0.25, "layer.0.": 1e-3 * 0.5, "layer.1.": 1e-3}
    for name, rate in rates.items():
        if not name.startswith("encoders."):
            assert rate == pytest.approx(5e-3), name  # fusion and head: --head-lr, no decay
            continue
        part = next(p for p in expected if p in name)
        assert rate == pytest.approx(expected[part]), name
    seen = {part for part in expected for name in rates if part in name}
    assert seen == ({"embeddings.", "layer.0.", "layer.1."} if mode == "full" else {"layer.0.", "layer.1."})
    assert make_optimizer(build_model(config).model, config).param_groups[0]["lr"] == pytest.approx(1e-3)  # history's lr: the top layer's


def test_without_decay_every_encoder_parameter_trains_at_lr(meld_dir, tiny_bert):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="full", lr=1e-3)
    rates = learning_rates(build_model(config).model, config)
    assert {rate for name, rate in rates.items() if name.startswith("encoders.")} == {1e-3}


def test_layer_scales_read_each_stack_naming():
    names = ["encoders.A.model.feature_extractor.conv_layers.0.conv.weight",  # Wav2Vec2: below the stack
             "encoders.A.model.feature_projection.projection.weight",
             "encoders.A.model.encoder.layers.0.attention.q_proj.weight",
             "encoders.A.model.encoder.layers.2.attention.q_proj.weight",
             "encoders.A.model.encoder.layer_norm.weight",  # after the stack: the top layer's
             "encoders.T.model.wte.weight", "encoders.T.model.h.0.attn.c_attn.weight",  # GPT-2
             "encoders.T.model.h.1.attn.c_attn.weight", "encoders.V.model.classifier.weight"]  # no stack: 1
    assert layer_scales(names, 0.8) == pytest.approx({
        names[0]: 0.8 ** 3, names[1]: 0.8 ** 3, names[2]: 0.8 ** 2, names[3]: 1.0, names[4]: 1.0,
        names[5]: 0.8 ** 2, names[6]: 0.8, names[7]: 1.0, names[8]: 1.0})


def test_label_smoothing_is_the_mix_of_the_label_and_the_uniform_target():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 7), torch.tensor([0, 3, 6, 2, 2, 5])
    log_p = F.log_softmax(logits, dim=-1)
    direct = (0.9 * -log_p[torch.arange(6), labels] + 0.1 * -log_p.mean(dim=-1)).mean()
    smoothed = LabelObjective(label_smoothing=0.1)(logits, None, {"labels": labels})
    assert smoothed.item() == pytest.approx(direct.item(), rel=1e-6)
    plain = LabelObjective()(logits, None, {"labels": labels})
    assert plain.item() == pytest.approx(-log_p[torch.arange(6), labels].mean().item(), rel=1e-6)


def test_the_run_objective_takes_the_configs_smoothing(meld_dir, tiny_bert):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), label_smoothing=0.2)
    assert make_objective(config).label_smoothing == 0.2
