"""ExperimentConfig (`recognize.config`): checkpoint folder names for every modality, task
and mode, accepted spellings of flag values, one-line errors listing the valid values,
and the dict round trip that config.json relies on."""

import json
from pathlib import Path

import numpy as np
import pytest

from recognize.config import ExperimentConfig, backbone_name
from recognize.errors import RecognizeError
from recognize.flag_scope import SCOPES, check_given_flags

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MODAL_VALID = "valid: T, A, V or a '+'-joined combination such as T+A, T+A+V"


def config_error(**settings: object) -> str:
    """The message of the RecognizeError that ExperimentConfig(**settings) raises."""
    with pytest.raises(RecognizeError) as error:
        ExperimentConfig(**settings)
    return str(error.value)


@pytest.mark.parametrize(("task", "mode", "expected"), [
    ("emotion", "full", "T--ET(all-MiniLM-L6-v2)"),
    ("emotion", "lora", "T--EL(all-MiniLM-L6-v2)"),
    ("emotion", "frozen", "T--EF(all-MiniLM-L6-v2)"),
    ("sentiment", "full", "T--ST(all-MiniLM-L6-v2)"),
    ("sentiment", "lora", "T--SL(all-MiniLM-L6-v2)"),
    ("sentiment", "frozen", "T--SF(all-MiniLM-L6-v2)"),
])
def test_run_name_letters(task: str, mode: str, expected: str) -> None:
    assert ExperimentConfig(text_model=MINILM, task=task, mode=mode).run_name == expected


@pytest.mark.parametrize(("modal", "fusion", "expected"), [
    ("T", "lmf", "T--ET(all-mpnet-base-v2)"),
    ("a", "lmf", "A--ET(wav2vec2-base)"),
    ("V", "lmf", "V--ET(vivit-b-16x2-kinetics400)"),
    ("A+T", "lmf", "T+A--ET--LMF(all-mpnet-base-v2+wav2vec2-base)"),
    ("v+t", "lmf", "T+V--ET--LMF(all-mpnet-base-v2+vivit-b-16x2-kinetics400)"),
    ("V+A", "LMF", "A+V--ET--LMF(wav2vec2-base+vivit-b-16x2-kinetics400)"),
    ("V + a + T", "tfn", "T+A+V--ET--TFN(all-mpnet-base-v2+wav2vec2-base+vivit-b-16x2-kinetics400)"),
])
def test_run_name_modalities_in_canonical_order(modal: str, fusion: str, expected: str) -> None:
    config = ExperimentConfig(modal=modal, fusion=fusion)

    assert config.run_name == expected
    assert config.modal == expected.split("--")[0]


@pytest.mark.parametrize(("model_id", "expected"), [
    (MINILM, "all-MiniLM-L6-v2"),
    ("bert-base-uncased", "bert-base-uncased"),
    ("/models/tiny-bert/", "tiny-bert"),
    ("models/tiny-bert//", "tiny-bert"),
    ("C:\\models\\roberta-base\\", "roberta-base"),
])
def test_backbone_name(model_id: str, expected: str) -> None:
    assert backbone_name(model_id) == expected


def test_run_dir_from_local_path_with_trailing_slash(tmp_path: Path) -> None:
    config = ExperimentConfig(text_model=f"{tmp_path}/tiny-bert/", mode="L", task="s", output_dir=str(tmp_path / "out"))

    assert config.run_name == "T--SL(tiny-bert)"
    assert config.run_dir == tmp_path / "out" / "T--SL(tiny-bert)"


@pytest.mark.parametrize(("value", "mode"), [
    ("T", "full"), ("t", "full"), ("full", "full"), ("FULL", "full"),
    ("L", "lora"), ("l", "lora"), ("LoRA", "lora"),
    ("F", "frozen"), ("f", "frozen"), ("frozen", "frozen"),
])
def test_mode_names_and_letters(value: str, mode: str) -> None:
    assert ExperimentConfig(mode=value).mode == mode


@pytest.mark.parametrize(("value", "task"), [("emotion", "emotion"), ("E", "emotion"), ("Sentiment", "sentiment"), ("s", "sentiment")])
def test_label_type_spellings(value: str, task: str) -> None:
    assert ExperimentConfig(task=value).task == task


@pytest.mark.parametrize(("mode", "lr", "expected"), [("full", None, 2e-5), ("L", None, 2e-4), ("frozen", None, 1e-3), ("lora", 0.5, 0.5)])
def test_learning_rate_defaults_by_mode(mode: str, lr: "float | None", expected: float) -> None:
    assert ExperimentConfig(mode=mode, lr=lr).learning_rate == expected


INVALID: dict[str, tuple[dict[str, object], str]] = {
    "modal=X": ({"modal": "X"}, f"--modal: unknown value 'X'; {MODAL_VALID}"),
    "modal=T+T": ({"modal": "T+T"}, f"--modal: unknown value 'T+T'; {MODAL_VALID}"),
    "modal=T+": ({"modal": "T+"}, f"--modal: unknown value 'T+'; {MODAL_VALID}"),
    "modal=blank": ({"modal": " "}, f"--modal: unknown value ' '; {MODAL_VALID}"),
    "task=mood": ({"task": "mood"}, "--label-type: unknown value 'mood'; valid: emotion, sentiment, e, s"),
    "mode=tuned": ({"mode": "tuned"}, "--mode: unknown value 'tuned'; valid: full, lora, frozen, T, L, F"),
    "pooling=max": ({"pooling": "max"}, "--pooling: unknown value 'max'; valid: auto, cls, mean, last"),
    "precision=fp8": ({"precision": "fp8"}, "--precision: unknown value 'fp8'; valid: auto, no, fp16, bf16"),
    "epochs=0": ({"epochs": 0}, "--epochs: must be at least 1, got 0"),
    "batch_size=-2": ({"batch_size": -2}, "--batch-size: must be at least 1, got -2"),
    "context=-1": ({"context": -1}, "--context: must be 0 or more, got -1"),
    "warmup=1.0": ({"warmup": 1.0}, "--warmup: a fraction in [0, 1), got 1.0"),
    "epochs='3'": ({"epochs": "3"}, "--epochs: expected an integer, got '3' (str)"),
    "epochs=2.5": ({"epochs": 2.5}, "--epochs: expected an integer, got 2.5 (float)"),
    "lr='1e-3'": ({"lr": "1e-3"}, "--lr: expected a number, got '1e-3' (str)"),
    "fusion_dim=True": ({"fusion_dim": True}, "--fusion-dim: expected an integer, got True (bool)"),
}
"""Test id -> (ExperimentConfig settings, the exact error message)."""


@pytest.mark.parametrize("case", INVALID)
def test_invalid_values_list_the_valid_ones(case: str) -> None:
    settings, expected = INVALID[case]
    assert config_error(**settings) == expected


def test_unknown_mode_letter_lists_the_valid_values() -> None:
    assert config_error(mode="x").endswith("; valid: full, lora, frozen, T, L, F")


def test_dict_round_trip_through_json() -> None:
    config = ExperimentConfig(data="some/MELD", modal="a+t", task="S", mode="L", text_model=MINILM, context=3,
                              lr=1e-4, init_from=[Path("checkpoints/stage1")], class_weights=True, seed=7)
    saved = json.loads(json.dumps(config.to_dict()))

    assert saved["modal"] == "T+A" and saved["task"] == "sentiment" and saved["mode"] == "lora"
    assert saved["init_from"] == ["checkpoints/stage1"]
    assert ExperimentConfig.from_dict(saved) == config
    assert ExperimentConfig.from_dict(saved).run_name == "T+A--SL--LMF(all-MiniLM-L6-v2+wav2vec2-base)"


def test_numpy_numbers_from_a_sweep_become_python_numbers_that_json_takes() -> None:
    config = ExperimentConfig(epochs=np.int64(3), lr=np.float32(0.5), head_lr=None, max_audio_seconds=np.int32(4))

    assert (type(config.epochs), type(config.lr), type(config.max_audio_seconds)) == (int, float, float)
    assert json.loads(json.dumps(config.to_dict()))["epochs"] == 3
    assert (config.lr, config.head_lr, config.max_audio_seconds) == (0.5, None, 4.0)


def test_from_dict_rejects_unknown_keys() -> None:
    values = {**ExperimentConfig().to_dict(), "extra": 1, "bogus": 2}

    with pytest.raises(RecognizeError) as error:
        ExperimentConfig.from_dict(values)
    assert str(error.value).startswith("unknown config keys ['bogus', 'extra']; known: ['audio_model', 'batch_size',")


def test_local_paths_that_exist_are_saved_absolute_and_hub_ids_as_given(tmp_path: Path, monkeypatch) -> None:
    for folder in ("MELD", "models/tiny-bert", "checkpoints/T--ET(tiny-bert)"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "MELD")
    monkeypatch.chdir(tmp_path)

    config = ExperimentConfig(data="link", text_model="models/tiny-bert", audio_model="facebook/wav2vec2-base",
                              init_from=["checkpoints/T--ET(tiny-bert)"], output_dir="checkpoints")

    assert config.data == str(tmp_path / "link")  # the link itself, not where it points
    assert config.text_model == str(tmp_path / "models" / "tiny-bert")
    assert config.audio_model == "facebook/wav2vec2-base"
    assert config.init_from == [str(tmp_path / "checkpoints" / "T--ET(tiny-bert)")]
    assert config.output_dir == "checkpoints" and config.run_name == "T--ET(tiny-bert)"


@pytest.mark.parametrize("settings, given", [
    (dict(mode="lora"), ["lora_r", "lora_alpha", "lora_dropout", "lora_targets", "lr", "head_lr"]),
    (dict(mode="frozen", cache=False), ["cache", "head_lr", "text_model", "context", "pooling", "max_length"]),
    (dict(mode="frozen"), ["cache", "cache_dir", "lr"]),
    (dict(mode="full", teacher="checkpoints/T--ET(x)"), ["cache_dir"]),  # the teacher's outputs are cached
    (dict(mode="frozen", init_from=["checkpoints/T--ET(x)"]), ["init_epoch"]),
    (dict(modal="T+A", fusion="lmf"), ["fusion", "fusion_dim", "lmf_rank", "audio_model", "max_audio_seconds", "missing_media"]),
    (dict(modal="V"), ["video_model", "missing_media"]),
    (dict(mode="full", modal="A"), []),  # defaults of every other flag: nothing given, nothing refused
])
def test_flags_the_run_uses_pass(settings, given):
    check_given_flags(ExperimentConfig(**settings), given)


def test_every_flag_that_can_go_unused_is_refused_at_its_default_only_when_given():
    config = ExperimentConfig(modal="A", mode="full")
    given = [name for name in SCOPES if SCOPES[name](config) is not None]

    assert given == ["lora_r", "lora_alpha", "lora_dropout", "lora_targets", "cache", "cache_dir", "text_model", "context",
                     "future_context", "pooling", "max_length", "video_model", "fusion", "fusion_dim", "lmf_rank",
                     "init_epoch"]
    check_given_flags(config, [])
    with pytest.raises(RecognizeError) as refused:
        check_given_flags(config, given)
    assert str(refused.value) == (
        "--lora-r, --lora-alpha, --lora-dropout, --lora-targets: for --mode lora only (this run: --mode full); --cache: for "
        "--mode frozen only, whose encoders the feature cache stands in for (this run: --mode full); --cache-dir: for a run "
        "that uses the feature cache only: --mode frozen without --no-cache, or --teacher (this run: --mode full, no "
        "--teacher); --text-model, --context, --future-context, --pooling, --max-length: for a run with text (T) only (this run: --modal A); "
        "--video-model: for a run with video (V) only (this run: --modal A); --fusion, --fusion-dim, --lmf-rank: for a run "
        "of several modalities only, which fuses them (this run: --modal A); --init-epoch: for a run with --init-from only, "
        "whose checkpoints it picks the weights of")
