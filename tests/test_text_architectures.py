"""Text encoders across the architectures researchers use (tests/text_architectures.py),
each built tiny with a tokenizer of its own kind: every one trains in the three modes,
evaluates and predicts; LoRA adapts its attention projections (separate or fused); its
pooled vector is the direct computation and independent of the padding beside it; a
decoder-only model is never CLS-pooled."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from recognize import ExperimentConfig, evaluate, train
from recognize.checkpoint import read_json
from recognize.dataset.meld import load_split
from recognize.dataset.synthetic import write_synthetic_meld
from recognize.dataset.text import pad_text, tokenize_rows
from recognize.model.classifier import EmotionModel
from recognize.model.encoders import TextEncoder, load_backbone, load_tokenizer, resolve_pooling
from recognize.model.modes import apply_mode
from recognize.predictor import predict_utterance

from helpers import error_line, offline_and_quiet  # noqa: F401 (an autouse fixture)
from text_architectures import ARCHITECTURES, write_text_model

LORA_LAYERS = {
    "bert": {"query", "value"}, "roberta": {"query", "value"}, "xlm-roberta": {"query", "value"}, "mpnet": {"q", "v"},
    "distilbert": {"q_lin", "v_lin"}, "deberta-v2": {"query_proj", "value_proj"}, "albert": {"query", "value"},
    "electra": {"query", "value"}, "modernbert": {"Wqkv"}, "t5": {"q", "v"}, "gpt2": {"c_attn"}, "llama": {"q_proj", "v_proj"},
    "qwen2": {"q_proj", "v_proj"},
}
"""Architecture -> the layers LoRA adapts by default (ModernBERT's and GPT-2's are fused query/key/value maps)."""
DECODER_ONLY = ("gpt2", "llama", "qwen2")


@pytest.fixture(scope="module")
def text_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("text-models")
    return {name: write_text_model(folder / name, name) for name in ARCHITECTURES}


@pytest.fixture(scope="module")
def small_meld(tmp_path_factory) -> Path:
    return write_synthetic_meld(tmp_path_factory.mktemp("data") / "MELD", dialogues={"train": 4, "dev": 2, "test": 2})


def adapted(names) -> set[str]:
    """The last name component of each layer that carries LoRA adapters."""
    return {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in names if ".lora_" in name}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_trains_in_each_mode_evaluates_and_predicts(text_models, small_meld, tmp_path, name):
    settings = dict(data=str(small_meld), modal="T", text_model=str(text_models[name]), epochs=1, batch_size=8, lr=1e-3,
                    workers=0, output_dir=str(tmp_path))
    folders = {mode: train(ExperimentConfig(mode=mode, **settings)) for mode in ("full", "lora", "frozen")}

    for folder in folders.values():
        assert evaluate(folder, split="dev")["weighted_f1"] == read_json(folder / "metrics.json")["dev"]["weighted_f1"]
    assert adapted(load_file(folders["lora"] / "model.safetensors")) == LORA_LAYERS[name]
    evaluate(folders["lora"], split="test")
    predicted = pd.read_csv(folders["lora"] / "predictions-test.csv").iloc[0]
    rows = load_split(str(small_meld), "test")
    text = rows[(rows["dialogue_id"] == predicted["dialogue_id"]) & (rows["utterance_id"] == predicted["utterance_id"])]["text"].item()
    probabilities = predict_utterance(folders["lora"], text=text)
    assert probabilities == pytest.approx({label: predicted[f"p_{label}"] for label in probabilities}, abs=1e-5)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_pooling_is_the_direct_computation_and_ignores_the_padding(text_models, name):
    folder = str(text_models[name])
    tokenizer, backbone = load_tokenizer(folder), load_backbone(folder).eval()
    rows = pd.DataFrame({"dialogue_id": [0, 1], "speaker": ["", ""],
                         "text": ["wow", "okay you know that the coffee is great today really"]})
    encodings = tokenize_rows(rows, tokenizer, context=0, max_length=64)
    batch = pad_text(encodings, tokenizer.pad_token_id or 0, multiple=1)
    real = [len(e["input_ids"]) for e in encodings]
    assert real[0] < real[1]  # the first row is padded
    with torch.no_grad():
        hidden = backbone(**batch).last_hidden_state
    expected = {"cls": hidden[:, 0], "mean": torch.stack([hidden[row, :n].mean(0) for row, n in enumerate(real)]),
                "last": torch.stack([hidden[row, n - 1] for row, n in enumerate(real)])}

    for pooling in ("mean", "last") if name in DECODER_ONLY else ("cls", "mean", "last"):
        encoder = TextEncoder(backbone, pooling).eval()
        with torch.no_grad():
            pooled = encoder(batch)
            alone = encoder(pad_text(encodings[:1], tokenizer.pad_token_id or 0, multiple=1))
        assert torch.allclose(pooled, expected[pooling], atol=1e-5), pooling
        assert torch.allclose(alone[0], pooled[0], atol=1e-5), pooling


@pytest.mark.parametrize("name", DECODER_ONLY)
def test_a_decoder_only_model_is_mean_pooled_by_default_and_never_cls_pooled(text_models, small_meld, tmp_path, name):
    folder = str(text_models[name])
    backbone = load_backbone(folder)
    model_type = backbone.config.model_type

    assert resolve_pooling(folder, backbone, "auto") == "mean"
    assert resolve_pooling(folder, backbone, "last") == "last"
    assert resolve_pooling(folder, backbone, "cls", new_run=False) == "cls"  # a checkpoint saved before the check loads
    assert error_line("train", small_meld, "--text-model", folder, "--pooling", "cls", "--output-dir", tmp_path) == (
        f"error: --pooling cls: {folder} is a decoder-only model ({model_type}), whose first token sees none after it; "
        "pass --pooling mean or --pooling last")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", DECODER_ONLY)
def test_a_decoder_only_backbone_keeps_no_key_value_cache(text_models, name):
    backbone = load_backbone(str(text_models[name]))
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        output = backbone(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert output.past_key_values is None  # the config saved with the model asks for one: generation's, not ours


def test_a_lora_target_that_matches_nothing_is_an_error_not_silently_dropped(text_models, small_meld, tmp_path):
    assert error_line("train", small_meld, "--text-model", text_models["bert"], "--mode", "lora",
                      "--lora-targets", "query,valu", "--output-dir", tmp_path) == (
        "error: --lora-targets: valu matched no layer of any encoder (peft adapts the names it finds and passes over the rest)")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", DECODER_ONLY)
def test_a_tokenizer_without_a_pair_template_keeps_the_context_and_the_utterance_apart(text_models, name):
    tokenizer = load_tokenizer(str(text_models[name]))
    rows = pd.DataFrame({"dialogue_id": [0, 0], "speaker": ["Ross", "Rachel"], "text": ["okay wow", "hate that"]})

    paired = tokenize_rows(rows, tokenizer, context=1, max_length=64)[1]["input_ids"]

    assert paired == tokenizer("Ross: okay wow Rachel: hate that")["input_ids"]  # not "...wowRachel: ..."
    followed = tokenize_rows(rows, tokenizer, context=0, max_length=64, future=1)[0]["input_ids"]
    assert followed == tokenizer("Ross: okay wow Rachel: hate that")["input_ids"]  # no separator token: a space


def test_lora_on_gpt2s_transposed_conv1d_is_set_up_without_a_warning(text_models, recwarn):
    model = EmotionModel({"T": TextEncoder(load_backbone(str(text_models["gpt2"])), "mean")}, num_labels=3, dropout=0.0)

    apply_mode(model, "lora", r=4, alpha=8, dropout=0.0)

    assert adapted(name for name, _ in model.named_parameters()) == {"c_attn"}
    assert not [str(w.message) for w in recwarn]


def test_a_model_saved_in_bfloat16_loads_in_float32(text_models):
    assert json.loads((text_models["t5"] / "config.json").read_text())["dtype"] == "bfloat16"

    backbone = load_backbone(str(text_models["t5"]))

    assert {p.dtype for p in backbone.parameters()} == {torch.float32}
    assert type(backbone).__name__ == "T5Stack"  # the encoder of the encoder-decoder


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_an_empty_utterance_without_special_tokens_pools_to_zero(text_models, pooling):
    folder = str(text_models["gpt2"])  # its tokenizer adds no special tokens: MELD's empty utterances have none
    tokenizer = load_tokenizer(folder)
    encodings = tokenize_rows(pd.DataFrame({"dialogue_id": [0, 1], "speaker": ["", ""], "text": ["", "okay wow"]}), tokenizer,
                              context=0, max_length=64)
    assert encodings[0]["input_ids"] == []

    with torch.no_grad():
        pooled = TextEncoder(load_backbone(folder), pooling).eval()(pad_text(encodings, 0, multiple=1))

    assert torch.equal(pooled[0], torch.zeros_like(pooled[0])) and pooled[1].abs().sum() > 0
