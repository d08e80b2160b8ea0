"""The command line's handling of bad input: each case exits with code 1, prints nothing on
stdout and exactly one line on stderr, "error: ..." naming the problem. Run in-process
with Typer's CliRunner, offline; `meld_dir` and `tiny_bert` come from conftest.py."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import BertConfig, BertModel
from typer.testing import CliRunner

from recognize import checkpoint, train
from recognize.checkpoint import CONFIG, checkpoint_record, write_json
from recognize.cli import app
from recognize.config import ExperimentConfig
from recognize.dataset.meld import read_raw_csv
from recognize.dataset.synthetic import vocabulary, write_synthetic_meld
from recognize.digest import model_config_digest
from recognize.labels import EMOTIONS
from recognize.tiny import write_tiny_bert, write_tiny_wav2vec2

from helpers import error_line, offline_and_quiet, train_interrupted  # noqa: F401 (offline_and_quiet: an autouse fixture)

MODAL_VALID = "valid: T, A, V or a '+'-joined combination such as T+A, T+A+V"
BAD_FLAGS: dict[str, str] = {
    "--modal X": f"error: --modal: unknown value 'X'; {MODAL_VALID}",
    "--modal T+Q": f"error: --modal: unknown value 'T+Q'; {MODAL_VALID}",
    "--label-type mood": "error: --label-type: unknown value 'mood'; valid: emotion, sentiment, e, s",
    "--mode tuned": "error: --mode: unknown value 'tuned'; valid: full, lora, frozen, T, L, F",
    "--epochs 0": "error: --epochs: must be at least 1, got 0",
    "--overwrite --resume": "error: --overwrite and --resume exclude each other",
    "--missing-media drop": "error: --missing-media: unknown value 'drop'; valid: skip, zero",
    "--max-audio-seconds 0": "error: --max-audio-seconds: must be positive, got 0.0",
    "--workers -2": "error: --workers: 0 or more, or -1 for automatic, got -2",
    "--lmf-rank 0": "error: --lmf-rank: must be at least 1, got 0",
    "--modal T+A --fusion mean": "error: --fusion: unknown value 'mean'; valid: lmf, tfn, concat, attention",
    "--lr -1": "error: --lr: must be 0 or more, got -1.0",
    "--lr inf": "error: --lr: must be 0 or more, got inf",
    "--head-lr nan": "error: --head-lr: must be 0 or more, got nan",
    "--weight-decay -0.1": "error: --weight-decay: must be 0 or more, got -0.1",
    "--grad-clip -1": "error: --grad-clip: must be 0 or more, got -1.0",
    "--dropout 1.5": "error: --dropout: a fraction in [0, 1), got 1.5",
    "--lora-dropout 1": "error: --lora-dropout: a fraction in [0, 1), got 1.0",
    "--warmup 1": "error: --warmup: a fraction in [0, 1), got 1.0",
    "--patience -2": "error: --patience: must be 0 or more, got -2",
    "--lora-alpha 0": "error: --lora-alpha: must be at least 1, got 0",
    "--seed -1": "error: --seed: must be 0 to 4294967292 (each epoch seeds numpy, which takes below 2^32, with seed + epoch), "
                 "got -1",
    "--seed 4294967295": "error: --seed: must be 0 to 4294967292 (each epoch seeds numpy, which takes below 2^32, with "
                         "seed + epoch), got 4294967295",
    "--seeds 1,-1": "error: --seeds: '1,-1' is not a comma-separated list of integers 0 or more, e.g. 1,2,3",
    "--seed 7 --seeds 1,2": "error: --seed 7 and --seeds 1,2 exclude each other: --seeds gives each run its seed",
    "--future-context -1": "error: --future-context: must be 0 or more, got -1",
    "--layer-decay 0": "error: --layer-decay: a factor in (0, 1], got 0.0",
    "--layer-decay 1.2": "error: --layer-decay: a factor in (0, 1], got 1.2",
    "--label-smoothing 1": "error: --label-smoothing: a fraction in [0, 1), got 1.0",
    "--label-smoothing 0.1 --teacher teacher-folder": "error: --label-smoothing: not with --teacher (the distillation loss's soft "
                                             "targets stand in for it)",
    "--focal-gamma -1": "error: --focal-gamma: must be 0 or more, got -1.0",
    "--focal-gamma 2 --teacher teacher-folder": "error: --focal-gamma: not with --teacher (the distillation loss replaces "
                                                "the cross-entropy)",
    "--init-epoch first": "error: --init-epoch: unknown value 'first'; valid: best, last",
    "--ema-decay 1": "error: --ema-decay: a fraction in [0, 1), got 1.0",
    "--ema-decay -0.5": "error: --ema-decay: a fraction in [0, 1), got -0.5",
}
"""`train` flags (split on spaces) -> the one line they must fail with."""


UNUSED_FLAGS: dict[str, str] = {
    "--lora-r 16 --mode full": "error: --lora-r: for --mode lora only (this run: --mode full)",
    "--lora-r 8 --mode full": "error: --lora-r: for --mode lora only (this run: --mode full)",  # typed, though the default
    "--lora-alpha 32 --lora-dropout 0.1 --lora-targets query --mode frozen":
        "error: --lora-alpha, --lora-dropout, --lora-targets: for --mode lora only (this run: --mode frozen)",
    "--no-cache --mode lora": "error: --no-cache: for --mode frozen only, whose encoders the feature cache stands in for "
                              "(this run: --mode lora)",
    "--cache-dir {tmp} --mode full": "error: --cache-dir: for a run that uses the feature cache only: --mode frozen without "
                                     "--no-cache, or --teacher (this run: --mode full, no --teacher)",
    "--cache-dir {tmp} --mode frozen --no-cache": "error: --cache-dir: for a run that uses the feature cache only: --mode "
                                                  "frozen without --no-cache, or --teacher (this run: --mode frozen --no-cache, no --teacher)",
    "--modal A --context 2 --pooling mean --max-length 64":
        "error: --text-model, --context, --pooling, --max-length: for a run with text (T) only (this run: --modal A)",
    "--modal A --future-context 1": "error: --text-model, --future-context: for a run with text (T) only (this run: --modal A)",
    "--audio-model x --max-audio-seconds 4 --video-model y": "error: --audio-model, --max-audio-seconds: for a run with "
        "audio (A) only (this run: --modal T); --video-model: for a run with video (V) only (this run: --modal T)",
    "--missing-media zero": "error: --missing-media: for a run with audio (A) or video (V) only (this run: --modal T)",
    "--fusion tfn --fusion-dim 32": "error: --fusion, --fusion-dim: for a run of several modalities only, which fuses them "
                                    "(this run: --modal T)",
    "--modal T+A --fusion concat --lmf-rank 2": "error: --lmf-rank: for --fusion lmf only (this run: --fusion concat)",
    "--mode frozen --lr 1e-3 --head-lr 1e-2": "error: --lr: with --mode frozen only the fusion and head train, at --head-lr "
                                              "(give one of the two)",
    "--mode frozen --layer-decay 0.8": "error: --layer-decay: for --mode full or lora only, which train the encoders' "
                                       "layers (this run: --mode frozen)",
    "--init-epoch last": "error: --init-epoch: for a run with --init-from only, whose checkpoints it picks the weights of",
}
"""`train` flags that the run would not use (split on spaces; {tmp} a folder) -> the one line they must fail with."""


@pytest.mark.parametrize("flags", UNUSED_FLAGS)
def test_a_flag_the_run_would_not_use_is_refused_not_ignored(meld_dir: Path, tmp_path: Path, tiny_bert: Path,
                                                            flags: str) -> None:
    line = error_line("train", meld_dir, "--text-model", tiny_bert, *flags.format(tmp=tmp_path).split(),
                      "--output-dir", tmp_path / "ck")

    assert line == UNUSED_FLAGS[flags]
    assert not (tmp_path / "ck").exists()


def test_cache_build_refuses_a_model_flag_of_a_modality_it_does_not_build(meld_dir: Path, tmp_path: Path) -> None:
    line = error_line("cache", "build", meld_dir, "--modal", "A", "--text-model", "x", "--context", 1,
                      "--cache-dir", tmp_path)

    assert line == "error: --text-model, --context: for a run with text (T) only (this run: --modal A)"
    assert list(tmp_path.iterdir()) == []


def test_missing_data_folder(tmp_path: Path, tiny_bert: Path) -> None:
    data = tmp_path / "absent"

    assert error_line("train", data, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck") == (
        f"error: {data}: data folder not found (expected a MELD folder with train_sent_emo.csv)"
    )


def test_data_folder_without_train_csv(tmp_path: Path, tiny_bert: Path) -> None:
    data = write_synthetic_meld(tmp_path / "MELD", dialogues={"dev": 2, "test": 2})

    assert error_line("train", data, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck") == (
        f"error: {data / 'train_sent_emo.csv'}: CSV not found in the data folder (it holds dev_sent_emo.csv, test_sent_emo.csv)"
    )


@pytest.mark.parametrize("flags", BAD_FLAGS)
def test_bad_train_flags(meld_dir: Path, tmp_path: Path, flags: str) -> None:
    assert error_line("train", meld_dir, "--output-dir", tmp_path / "ck", *flags.split()) == BAD_FLAGS[flags]


def test_a_seed_out_of_range_fails_before_any_seed_trains(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--epochs", 2,
                      "--seeds", "1,4294967295", "--output-dir", tmp_path / "ck")

    assert line == ("error: --seed: must be 0 to 4294967294 (each epoch seeds numpy, which takes below 2^32, with "
                    "seed + epoch), got 4294967295")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("targets, message", [
    ("attention", "'attention' names a BertAttention, not a layer LoRA adapts (a Linear, Embedding or convolution, "
                  "e.g. an attention's query)"),  # peft's message was the first line of the module's repr
    ("qury", "Target modules {'qury'} not found in the base model. Please check the target modules and try again."),
])
def test_lora_targets_that_cannot_be_adapted(meld_dir: Path, tmp_path: Path, tiny_bert: Path, targets: str,
                                             message: str) -> None:
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "lora", "--lora-targets", targets,
                      "--output-dir", tmp_path / "ck")

    assert line == f"error: --lora-targets: {message}"
    assert not (tmp_path / "ck").exists()


def test_model_id_that_is_not_a_local_folder(meld_dir: Path, tmp_path: Path) -> None:
    line = error_line("train", meld_dir, "--text-model", "no-such-org/no-such-model", "--output-dir", tmp_path / "ck")

    assert line == (
        "error: cannot load the model of 'no-such-org/no-such-model': it is not a local folder and not in the Hugging Face "
        "cache (offline or unreachable hub); pass a local folder path, e.g. --text-model /path/to/no-such-model"
    )
    assert not (tmp_path / "ck").exists()


def test_model_folder_without_a_model(meld_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()

    line = error_line("train", meld_dir, "--text-model", folder, "--output-dir", tmp_path / "ck")

    assert line.startswith(f"error: cannot load the model from folder '{folder}': ")


@pytest.mark.parametrize("below", ["", "runs"])
def test_an_output_dir_that_is_a_file_fails_before_loading(meld_dir: Path, tmp_path: Path, tiny_bert: Path,
                                                           below: str) -> None:
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    output = taken / below if below else taken

    line = error_line("train", meld_dir, "--text-model", "no-such-org/never-loaded", "--output-dir", output)

    assert line == f"error: --output-dir {output}: {taken} is a file, not a folder"


def test_a_seeds_setting_folder_is_not_overwritten_or_read_as_one_run(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    """A single-seed `train --overwrite` (--seeds forgotten) used to delete every seed's run."""
    base = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck"))
    for seed in (1, 2):
        config = ExperimentConfig.from_dict({**base.to_dict(), "seed": seed, "seed_folder": True})
        write_json(config.run_dir / CONFIG, checkpoint_record(config, {}))
    setting = base.setting_dir

    assert error_line("train", meld_dir, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck", "--overwrite") == (
        f"error: {setting}: holds the runs of `train --seeds`; train with --seeds, or pass another --output-dir for a single run")
    assert sorted(p.name for p in setting.iterdir()) == ["seed-1", "seed-2"]
    assert error_line("predict", setting, "--text", "okay") == (
        f"error: {setting}: holds one run per seed (seed-1, seed-2); give one of them, e.g. {setting / 'seed-1'}")


def test_existing_checkpoint_needs_overwrite_or_resume(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    run_dir = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="F", output_dir=str(tmp_path / "ck")).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")

    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--output-dir", tmp_path / "ck")

    assert line == f"error: {run_dir}: checkpoint folder exists; pass --overwrite to replace it or --resume to continue it"
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]

    (run_dir / "state" / "epoch-2").mkdir(parents=True)
    (run_dir / "state" / "latest.json").write_text('{"folder": "epoch-2"}')
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--output-dir", tmp_path / "ck")
    assert line == (f"error: {run_dir}: checkpoint folder exists, holding a run interrupted after epoch 2; "
                    "pass --resume to continue it or --overwrite to start afresh")
    (run_dir / "state" / "latest.json").write_text("[]")  # damaged: still one line
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--output-dir", tmp_path / "ck")
    assert line == (f"error: {run_dir}: checkpoint folder exists, holding a run interrupted; "
                    "pass --resume to continue it or --overwrite to start afresh")

    shutil.rmtree(run_dir / "state")
    (run_dir / "metrics.json").write_text("{}")
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--output-dir", tmp_path / "ck")
    assert line == (f"error: {run_dir}: checkpoint folder exists, holding a finished run; pass --overwrite to replace it, "
                    "or another --output-dir to keep both (run names leave out --context, --lr, --epochs...)")


def test_overwrite_with_bad_data_keeps_the_old_run(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    run_dir = ExperimentConfig(data=str(meld_dir), modal="A", audio_model=str(tiny_bert), output_dir=str(tmp_path / "ck")).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")

    line = error_line("train", meld_dir, "--modal", "A", "--audio-model", tiny_bert, "--output-dir", tmp_path / "ck", "--overwrite")

    assert line.startswith(f"error: {meld_dir / 'audios' / 'train'}: no such folder")
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("missing_media", ["skip", "zero"])
def test_a_split_with_no_usable_clip_is_an_error_naming_the_folder(meld_dir, tmp_path, missing_media):
    """Clips under other names (here .wav, not .flac) are all "missing": with zero-filling,
    the run used to train an audio model that never heard a clip."""
    data = tmp_path / "MELD"
    shutil.copytree(meld_dir, data)
    for split in ("train", "dev", "test"):
        (data / "audios" / split).mkdir(parents=True)
    (data / "audios" / "train" / "dia1_utt0.wav").write_bytes(b"RIFF")
    rows = len(read_raw_csv(data / "train_sent_emo.csv"))

    line = error_line("train", data, "--modal", "A", "--audio-model", write_tiny_wav2vec2(tmp_path / "w2v"),
                      "--missing-media", missing_media, "--output-dir", tmp_path / "ck")

    assert line == (f"error: {data / 'audios' / 'train'}: none of the {rows} train rows has a usable clip (--modal A reads "
                    f"dia{{D}}_utt{{U}}.flac here; it holds e.g. dia1_utt0.wav): {rows} missing, 0 unreadable")
    assert not (tmp_path / "ck").exists()


def test_overwrite_with_a_bad_test_csv_fails_before_training_and_keeps_the_old_run(meld_dir: Path, tmp_path: Path,
                                                                                    tiny_bert: Path) -> None:
    data = tmp_path / "MELD"
    shutil.copytree(meld_dir, data)
    test_csv = data / "test_sent_emo.csv"
    rows = read_raw_csv(test_csv)
    pd.concat([rows, rows.iloc[:1]]).to_csv(test_csv, index=False)  # the first row again at the end: a duplicate id pair
    run_dir = ExperimentConfig(data=str(data), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck")).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")

    line = error_line("train", data, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck", "--overwrite")

    assert line == f"error: {test_csv}: row {len(rows) + 1}: duplicate Dialogue_ID/Utterance_ID pair"
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]


def model_variant(tiny_bert: Path, folder: Path, change) -> Path:
    """A copy of the tiny BERT's folder, changed by `change(folder)`."""
    shutil.copytree(tiny_bert, folder)
    change(folder)
    return folder


def pickled_only(folder: Path) -> None:
    """Replace the safetensors weights with a pickled pytorch_model.bin."""
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


def cut_weights(folder: Path) -> None:
    """Keep the first 100 bytes of the weights: a damaged header."""
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def without_tokenizer(folder: Path) -> None:
    """Remove every tokenizer file."""
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


def fewer_embeddings(folder: Path) -> None:
    """Claim a smaller vocabulary than the tokenizer's: the weights then no longer load either, so resave them."""
    config = BertConfig.from_pretrained(folder)
    config.vocab_size = 40
    BertModel(config).save_pretrained(folder)


def cut_pooling_config(folder: Path) -> None:
    """A sentence-transformers pooling config cut short."""
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": tr')


def list_pooling_config(folder: Path) -> None:
    """A pooling config that is JSON but not an object."""
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text("[true]")


def writing(name: str, text: str):
    """A change that writes `text` to the folder's file `name`."""
    return lambda folder: (folder / name).write_text(text)


BAD_MODELS = {  # how the folder is changed -> the start of the one line it must fail with
    "pickled": (pickled_only, "error: --text-model {folder}: holds only pickled weights (*.bin), and only safetensors are loaded"),
    "cut": (cut_weights, "error: cannot load the model from folder '{folder}': Error while deserializing header"),
    "no-tokenizer": (without_tokenizer, "error: --text-model {folder}: its tokenizer has no vocabulary, only special tokens"),
    "fewer-embeddings": (fewer_embeddings, "error: --text-model {folder}: its tokenizer has 73 tokens and the model's embeddings 40"),
    "cut-pooling": (cut_pooling_config, "error: {folder}/1_Pooling/config.json: not valid JSON (Expecting value, line 1)"),
    "list-pooling": (list_pooling_config, "error: {folder}/1_Pooling/config.json: not a sentence-transformers pooling config"),
    "number-config": (writing("config.json", "3"), "error: {folder}/config.json: holds a bare value, not the JSON object of "
                                                    "settings transformers reads (--text-model)"),
    "list-tokenizer-config": (writing("tokenizer_config.json", "[]"), "error: {folder}/tokenizer_config.json: holds an array, "
                                                                       "not the JSON object of settings transformers reads (--text-model)"),
    "string-tokenizer": (writing("tokenizer.json", '"x"'), "error: {folder}/tokenizer.json: holds a string, not the JSON "
                                                            "object of settings transformers reads (--text-model)"),
    "cut-tokenizer-config": (writing("tokenizer_config.json", '{"do_lower_case": tr'),
                             "error: {folder}/tokenizer_config.json: not valid JSON (Expecting value, line 1)"),
    "binary-config": (lambda folder: (folder / "config.json").write_bytes(b"\xff\xfe{"),
                      "error: {folder}/config.json: not valid JSON (not UTF-8 text)"),
}


@pytest.mark.parametrize("name", BAD_MODELS)
def test_a_model_folder_that_cannot_be_used_safely_or_correctly_fails_before_training(meld_dir, tmp_path, tiny_bert, name):
    change, message = BAD_MODELS[name]
    folder = model_variant(tiny_bert, tmp_path / name, change)

    line = error_line("train", meld_dir, "--text-model", folder, "--output-dir", tmp_path / "ck")

    assert line.startswith(message.format(folder=folder)), line
    assert not (tmp_path / "ck").exists()


def test_a_speech_model_folder_whose_preprocessor_config_is_not_an_object_is_a_one_line_error(meld_dir, tmp_path):
    data = tmp_path / "MELD"
    shutil.copytree(meld_dir, data)
    for split in ("train", "dev", "test"):
        (data / "audios" / split).mkdir(parents=True)
    folder = write_tiny_wav2vec2(tmp_path / "wav2vec2")
    (folder / "preprocessor_config.json").write_text("[]")

    line = error_line("train", data, "--modal", "A", "--audio-model", folder, "--output-dir", tmp_path / "ck")

    assert line == (f"error: {folder}/preprocessor_config.json: holds an array, not the JSON object of settings "
                    "transformers reads (--audio-model)")
    assert not (tmp_path / "ck").exists()


def test_eval_and_predict_name_a_backbone_settings_file_that_is_not_an_object(meld_dir, tmp_path, tiny_bert):
    backbone = model_variant(tiny_bert, tmp_path / "bert", lambda folder: None)
    config = ExperimentConfig(data=str(meld_dir), text_model=str(backbone), mode="frozen", epochs=1, output_dir=str(tmp_path))
    train(config)
    (backbone / "tokenizer_config.json").write_text('"x"')
    expected = (f"error: {backbone}/tokenizer_config.json: holds a string, not the JSON object of settings transformers "
                "reads (--text-model)")

    assert error_line("eval", config.run_dir) == expected
    assert error_line("predict", config.run_dir, "--text", "okay") == expected


@pytest.mark.parametrize("max_length", [1, 2])
def test_max_length_that_leaves_no_utterance_token_fails_before_training(meld_dir, tmp_path, tiny_bert, max_length):
    """2: [CLS] [SEP] and no word, for every row; 1: below the special tokens, which the
    tokenizer then ignores (no truncation at all)."""
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--max-length", max_length, "--output-dir", tmp_path / "ck")

    assert line == (f"error: --max-length {max_length}: leaves no token of the utterance ({tiny_bert}'s tokenizer adds 2 "
                    "special tokens); at least 3")
    assert not (tmp_path / "ck").exists()


def test_max_length_beyond_the_models_positions_fails_before_training(meld_dir, tmp_path, tiny_bert):
    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--max-length", 300, "--output-dir", tmp_path / "ck")

    assert line == f"error: --max-length 300: {tiny_bert} embeds at most 256 positions"
    assert not (tmp_path / "ck").exists()


def test_a_checkpoint_never_turns_on_remote_code_by_itself(meld_dir, tmp_path, tiny_bert):
    marker = tmp_path / "remote-code-ran"
    run_dir = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", epochs=1,
                                     output_dir=str(tmp_path / "ck")))

    def with_remote_code(folder: Path) -> None:
        (folder / "remote.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
                                          "from transformers import BertModel\nclass RemoteModel(BertModel):\n    pass\n")
        settings = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**settings, "auto_map": {"AutoModel": "remote.RemoteModel"}}))

    remote = model_variant(tiny_bert, tmp_path / "remote-bert", with_remote_code)
    record = json.loads((run_dir / CONFIG).read_text())
    record["experiment"].update(text_model=str(remote), trust_remote_code=True)  # as someone else's checkpoint might say
    record["backbone_configs"]["T"] = model_config_digest(str(remote))
    (run_dir / CONFIG).write_text(json.dumps(record))

    for command in (["eval", run_dir], ["predict", run_dir, "--text", "okay"]):
        result = CliRunner().invoke(app, [str(a) for a in command])
        assert result.exit_code == 0, result.output
    assert not marker.exists()
    # nor in a next stage built from it (training/ recipes, README's "From Python")
    assert ExperimentConfig.from_checkpoint(run_dir, init_from=[str(run_dir)]).trust_remote_code is False
    assert ExperimentConfig.from_checkpoint(run_dir, trust_remote_code=True).trust_remote_code is True


def test_a_checkpoint_refuses_a_backbone_folder_whose_weights_changed_where_it_relies_on_them(meld_dir, tmp_path):
    backbone = write_tiny_bert(tmp_path / "bert", vocabulary(), seed=0)
    runs = {mode: train(ExperimentConfig(data=str(meld_dir), text_model=str(backbone), mode=mode, epochs=1,
                                         output_dir=str(tmp_path / "ck"))) for mode in ("frozen", "full")}
    write_tiny_bert(backbone, vocabulary(), seed=1)  # the same architecture, retrained in place: other weights

    assert error_line("eval", runs["frozen"]) == (  # a frozen run's backbone weights come from the folder
        f"error: {runs['frozen']}: the weights it takes from {backbone} (those its model.safetensors does not hold) "
        "are not the ones it was trained with; the backbone folder or hub model changed")
    result = CliRunner().invoke(app, ["eval", str(runs["full"])])  # full tuning stored every weight it uses
    assert result.exit_code == 0, result.output

    settings = json.loads((backbone / "config.json").read_text())  # its weights as trained, an activation edited
    (backbone / "config.json").write_text(json.dumps({**settings, "hidden_act": "relu"}))
    assert error_line("eval", runs["full"]) == (
        f"error: {runs['full']}: the config.json of {backbone} is not the one it was trained with "
        "(its settings changed: the same weights would compute something else)")


def test_weights_that_no_longer_fit_the_backbone_are_a_one_line_error(meld_dir, tmp_path, tiny_bert):
    run_dir = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), epochs=1, output_dir=str(tmp_path / "ck")))
    wider = write_tiny_bert(tmp_path / "wider-bert", vocabulary(), hidden=64)
    record = json.loads((run_dir / CONFIG).read_text())
    record["experiment"]["text_model"] = str(wider)
    (run_dir / CONFIG).write_text(json.dumps(record))

    line = error_line("eval", run_dir)

    assert line.startswith(f"error: {run_dir / 'model.safetensors'}: does not fit the model its config.json builds "
                           "(size mismatch for "), line


def test_eval_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "no-run"

    assert error_line("eval", folder) == f"error: {folder}: checkpoint folder not found"


def test_eval_folder_without_config(tmp_path: Path) -> None:
    folder = tmp_path / "T--ET(tiny-bert)"
    folder.mkdir()

    assert error_line("eval", folder) == f"error: {folder}: not a checkpoint folder (no config.json)"


def test_a_seeds_folder_where_one_run_is_needed_names_its_seeds(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    setting = tmp_path / "T--ET(tiny-bert)"
    for seed in (1, 2):
        config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), seed=seed, seed_folder=True,
                                  output_dir=str(tmp_path))
        write_json(config.run_dir / CONFIG, checkpoint_record(config, {}))

    message = f"{setting}: holds one run per seed (seed-1, seed-2); give one of them, e.g. {setting / 'seed-1'}"
    assert error_line("predict", setting, "--text", "hi") == f"error: {message}"
    student = ["train", meld_dir, "--text-model", tiny_bert, "--output-dir", tmp_path / "student"]
    assert error_line(*student, "--teacher", setting) == f"error: --teacher {message}"


def test_compare_of_an_emotion_and_a_sentiment_run_fails_before_evaluating(meld_dir: Path, tmp_path: Path,
                                                                            tiny_bert: Path) -> None:
    folders = []
    for task in ("emotion", "sentiment"):  # no weights: evaluating either would fail otherwise
        config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), task=task, output_dir=str(tmp_path))
        write_json(config.run_dir / CONFIG, checkpoint_record(config, {}))
        folders.append(config.run_dir)

    assert error_line("eval", folders[0], "--compare", folders[1]) == (
        f"error: --compare: {folders[0]} predicts emotion, {folders[1]} sentiment; compare two runs of one label type")


def test_eval_checkpoint_without_weights(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck"))
    write_json(config.run_dir / CONFIG, checkpoint_record(config, {}))

    assert error_line("eval", config.run_dir) == (
        f"error: {config.run_dir}: checkpoint has no model.safetensors (training never finished an epoch?)"
    )


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "unknown config keys ['bogus']; known: "),
    ({"epochs": "x"}, "--epochs: expected an integer, got 'x' (str)"),
    ({"modal": 3}, "its 'experiment' section has a value of the wrong type ("),
])
def test_a_checkpoint_config_with_bad_settings_names_the_file(meld_dir: Path, tmp_path: Path, tiny_bert: Path,
                                                             change: dict, message: str) -> None:
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck"))
    record = checkpoint_record(config, {})
    record["experiment"].update(change)
    write_json(config.run_dir / CONFIG, record)

    assert error_line("eval", config.run_dir).startswith(f"error: {config.run_dir / CONFIG}: {message}")


@pytest.mark.parametrize("labels", [EMOTIONS[::-1], EMOTIONS[:3], None])
def test_a_checkpoint_whose_label_list_was_edited_is_refused(meld_dir: Path, tmp_path: Path, tiny_bert: Path,
                                                             labels: "list[str] | None") -> None:
    """eval and predict name the model's outputs by config.json's labels: another order (or
    fewer) would name every class wrongly, and without them there is nothing to name."""
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck"))
    record = checkpoint_record(config, {})
    record.pop("labels")
    write_json(config.run_dir / CONFIG, {**record, **({"labels": list(labels)} if labels is not None else {})})
    expected = (f"error: {config.run_dir / CONFIG}: its 'labels' {labels if labels is None else list(labels)} are not "
                f"the emotion classes in the order the head was trained with, {list(EMOTIONS)}")

    assert error_line("eval", config.run_dir) == expected
    assert error_line("predict", config.run_dir, "--text", "okay") == expected


@pytest.mark.parametrize("command", [["cache", "ls"], ["cache", "clear", "--all"]])
def test_a_mistyped_cache_folder_is_an_error_not_an_empty_cache(tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "no-such-cache"

    assert error_line(*command, "--cache-dir", folder) == f"error: --cache-dir {folder}: no such folder"


def full_disk(tensors, filename, metadata=None):
    """safetensors' save_file on a full disk: it writes part of the file, then fails."""
    Path(filename).write_bytes(b"partial")
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


@pytest.mark.parametrize("mode", ["frozen", "full"])
def test_a_full_disk_is_a_one_line_error_and_leaves_no_partial_file(meld_dir, tmp_path, tiny_bert, monkeypatch, mode):
    """frozen: the feature cache's entry is the first file written; full: the weights."""
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    cache, output = tmp_path / "cache", tmp_path / "ck"
    cache.mkdir()

    cache_flags = ["--cache-dir", cache] if mode == "frozen" else []  # only a frozen run (of these) uses the cache

    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", mode, "--epochs", 1, *cache_flags,
                      "--output-dir", output)

    if mode == "frozen":
        assert re.fullmatch(rf"error: feature cache: {re.escape(str(cache))}/T-tiny-bert-train-\w+\.features\.safetensors: "
                            r"cannot write \(No space left on device \(os error 28\)\); give a --cache-dir that is "
                            r"writable and has room", line), line
        assert list(cache.iterdir()) == []
    else:
        run_dir = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(output)).run_dir
        assert line == f"error: {run_dir / 'model.safetensors'}: cannot write (No space left on device (os error 28))"
        assert [p.name for p in run_dir.iterdir()] == ["config.json"]


def test_demo_checks_its_epochs_before_writing_anything(tmp_path: Path) -> None:
    assert error_line("demo", "--epochs", 0, "--output", tmp_path / "demo") == "error: --epochs: must be at least 1, got 0"
    assert not (tmp_path / "demo").exists()


def test_missing_data_folder_reported_before_the_model_loads(tmp_path: Path) -> None:
    data = tmp_path / "absent"

    assert error_line("train", data, "--output-dir", tmp_path / "ck") == (
        f"error: {data}: data folder not found (expected a MELD folder with train_sent_emo.csv)"
    )


@pytest.mark.parametrize("name", ["runs [old]", "runs[/b]"])
def test_error_message_printed_verbatim(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name / "ckpt"

    assert error_line("eval", folder) == f"error: {folder}: checkpoint folder not found"


def test_a_diverged_run_fails_instead_of_saving_nan_weights_as_a_result(meld_dir, tmp_path, tiny_bert):
    output = tmp_path / "ck"

    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--lr", "1e8", "--grad-clip", 0, "--epochs", 2,
                      "--output-dir", output)

    assert line == ("error: epoch 1: training diverged (mean loss nan; the model's weights are no longer finite); "
                    "lower --lr (or --head-lr) and train again with --overwrite")
    run_dir = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(output)).run_dir
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "model.safetensors").exists()


def test_an_interrupted_run_is_not_evaluated_predicted_or_built_on(meld_dir, tmp_path, tiny_bert, monkeypatch):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), epochs=2, output_dir=str(tmp_path / "ck"))
    train_interrupted(config, after_epoch=1, monkeypatch=monkeypatch)  # its model.safetensors: epoch 1's weights
    expected = (f"error: {config.run_dir}: the run has not finished (no metrics.json: interrupted, or still training); "
                "`emotion-recognize train` with its flags and --resume finishes it")

    assert error_line("eval", config.run_dir) == expected
    assert error_line("predict", config.run_dir, "--text", "okay") == expected
    assert error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--init-from", config.run_dir,
                      "--output-dir", tmp_path / "stage2") == expected
    student = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", output_dir=str(tmp_path / "st"))
    student.run_dir.mkdir(parents=True)
    (student.run_dir / "notes.txt").write_text("keep me")
    assert error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--teacher", config.run_dir,
                      "--output-dir", tmp_path / "st", "--overwrite") == expected
    assert [p.name for p in student.run_dir.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in config.run_dir.iterdir()) == ["config.json", "history.csv", "model.safetensors", "state"]
