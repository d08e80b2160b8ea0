"""The feature cache: its key changes with each of its parts and with nothing else; a second
frozen run runs no encoder; killed, corrupted and concurrent builds never leave an entry
that is trusted wrongly; and frozen results are the same with and without the cache."""

import json
import re
import os
import shutil
import subprocess
import sys

import pytest
import soundfile
import torch
from safetensors.torch import load_file, save_file
from transformers import Data2VecAudioConfig, Data2VecAudioModel, Wav2Vec2FeatureExtractor
from typer.testing import CliRunner

from recognize import ExperimentConfig, train
from recognize.cli import FEATURE_SETTINGS, app
from recognize.config import cli_flag
from recognize.builder import build_model
from recognize.cache import SUFFIX, Entry, cache_root, feature_key, list_entries
from recognize.dataset.meld import load_split
from recognize.dataset.prepare import prepare
from recognize.dataset.synthetic import write_synthetic_meld_raw
from recognize.dataset.text import tokenize_rows
from recognize.model.encoders import AudioEncoder, TextEncoder, load_backbone
from recognize.tiny import write_tiny_wav2vec2
from recognize.teacher import _key as teacher_key

from helpers import ROOT


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EMOTION_RECOGNIZE_CACHE", str(folder))
    return folder


def frozen(meld_dir, tiny_bert, output, **overrides) -> ExperimentConfig:
    """A frozen text run on the shared tiny data."""
    return ExperimentConfig(**{**dict(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", epochs=2, lr=1e-2,
                                      output_dir=str(output)), **overrides})


def count_forwards(monkeypatch, encoder_class) -> list[int]:
    """Count the calls of `encoder_class.forward` from now on (in the returned list's one cell)."""
    calls = [0]
    forward = encoder_class.forward

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return forward(self, *args, **kwargs)
    monkeypatch.setattr(encoder_class, "forward", counted)
    return calls


def test_the_key_changes_with_each_of_its_parts_and_nothing_else(meld_dir, tiny_bert, tmp_path):
    config = frozen(meld_dir, tiny_bert, tmp_path)
    built = build_model(config)
    base = feature_key(config, built, "T", "train", None)

    def key_of(split="train", **overrides):
        changed = ExperimentConfig.from_dict({**config.to_dict(), **overrides})
        return feature_key(changed, build_model(changed), "T", split, None)

    # what a head or fusion experiment changes shares the entry, and so does "auto" precision on a CPU
    assert key_of(task="sentiment", lr=0.5, epochs=9, seed=3, modal="T", fusion="tfn", batch_size=4, dropout=0.5,
                  precision="no") == base
    for changed in (key_of(context=2), key_of(max_length=16), key_of(pooling="mean"), key_of(split="dev"),
                    key_of(precision="bf16")):
        assert changed != base and Entry.for_key(tmp_path, changed).path != Entry.for_key(tmp_path, base).path
    other = build_model(config)
    with torch.no_grad():
        next(other.model.encoders["T"].parameters())[0, 0] += 1e-3  # e.g. an --init-from stage's tuned encoder
    assert feature_key(config, other, "T", "train", None)["weights"] != base["weights"]
    edited = shutil.copytree(tiny_bert, tmp_path / "edited-bert")  # the same weights, another activation
    settings = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**settings, "hidden_act": "relu"}))
    edited_key = key_of(text_model=str(edited))
    assert edited_key["weights"] == base["weights"] and edited_key["config"] != base["config"]

    copy = tmp_path / "MELD"
    shutil.copytree(meld_dir, copy)
    csv = copy / "train_sent_emo.csv"
    csv.write_text(csv.read_text().replace("\n", "\r\n", 1))
    assert key_of(data=str(copy))["csv"] != base["csv"]
    clip = tmp_path / "clip.flac"
    clip.write_bytes(b"x")
    first = feature_key(config, built, "T", "train", [clip, None])["clips"]
    clip.write_bytes(b"xy")  # another size
    assert feature_key(config, built, "T", "train", [clip, None])["clips"] != first
    tokens = [{"input_ids": [2, 7, 3]}, {"input_ids": [2, 8, 3]}]
    retokenised = [tokens[0], {"input_ids": [2, 8, 9, 3]}]  # same settings, another tokenisation of a row
    assert feature_key(config, built, "T", "train", None, tokens) != feature_key(config, built, "T", "train", None, retokenised)


def test_a_second_frozen_run_runs_no_encoder_and_shares_the_entries_across_tasks(meld_dir, tiny_bert, tmp_path, cache, monkeypatch):
    calls = count_forwards(monkeypatch, TextEncoder)
    train(frozen(meld_dir, tiny_bert, tmp_path))
    assert calls[0] > 0
    built = sorted(p.name for p in cache.iterdir())
    assert len(built) == 3 and all(name.endswith(SUFFIX) for name in built)  # train, dev, test
    calls[0] = 0
    train(frozen(meld_dir, tiny_bert, tmp_path, task="sentiment"))
    assert calls[0] == 0
    assert sorted(p.name for p in cache.iterdir()) == built
    assert {e["split"] for e in list_entries(cache)} == {"train", "dev", "test"}
    listed = CliRunner().invoke(app, ["cache", "ls"], env={"COLUMNS": "80"}).output
    assert "…" not in listed  # file names wrap in a narrow terminal, whole, for `cache clear PATTERN`


def test_frozen_results_are_the_same_with_and_without_the_cache(meld_dir, tiny_bert, tmp_path, cache):
    with_cache = train(frozen(meld_dir, tiny_bert, tmp_path / "a"))
    without = train(frozen(meld_dir, tiny_bert, tmp_path / "b", cache=False))
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (with_cache, without))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (with_cache, without)]
    assert metrics[0]["test"]["confusion"] == metrics[1]["test"]["confusion"]
    assert metrics[0]["dev"]["weighted_f1"] == pytest.approx(metrics[1]["dev"]["weighted_f1"], abs=1e-12)


def test_frozen_results_under_mixed_precision_are_the_same_with_and_without_the_cache(meld_dir, tiny_bert, tmp_path, cache):
    """bf16 (autocast on this CPU, as on a GPU): the cached vectors are computed under autocast
    like the live ones, so the two runs learn the same head, up to how the CPU's bf16 kernels
    round batches of other shapes (the cache encodes other batches than training draws; to the
    bit on some CPUs, not on others): far closer than either is to a full-precision run's."""
    with_cache = train(frozen(meld_dir, tiny_bert, tmp_path / "a", precision="bf16"))
    without = train(frozen(meld_dir, tiny_bert, tmp_path / "b", precision="bf16", cache=False))
    full = train(frozen(meld_dir, tiny_bert, tmp_path / "c", cache=False))
    a, b, c = (load_file(str(folder / "model.safetensors")) for folder in (with_cache, without, full))
    assert a.keys() == b.keys() == c.keys()
    for name in a:  # measured on an AMD EPYC: 1.6e-5 against 6.3e-4 for the weight (the CPUs of earlier CI runs met atol 1e-6)
        assert (a[name] - b[name]).abs().max() <= (c[name] - b[name]).abs().max() / 10


def test_a_corrupted_entry_is_reported_and_built_again(meld_dir, tiny_bert, tmp_path, cache, monkeypatch, capsys):
    first = train(frozen(meld_dir, tiny_bert, tmp_path / "a"))
    entry = next(p for p in cache.iterdir() if "-train-" in p.name)
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # a flipped bit in the features
    entry.write_bytes(bytes(data))
    calls = count_forwards(monkeypatch, TextEncoder)
    second = train(frozen(meld_dir, tiny_bert, tmp_path / "b"))
    assert f"feature cache: {entry} is checksum mismatch; building it again" in capsys.readouterr().out
    assert calls[0] > 0
    assert load_file(str(first / "model.safetensors")).keys() == load_file(str(second / "model.safetensors")).keys()
    assert json.loads((first / "metrics.json").read_text())["test"] == json.loads((second / "metrics.json").read_text())["test"]

    entry.write_bytes(entry.read_bytes()[:100])  # cut short, as by a full disk
    train(frozen(meld_dir, tiny_bert, tmp_path / "c"))
    assert "is unreadable" in capsys.readouterr().out


def test_a_build_killed_half_way_leaves_no_entry_that_is_trusted(meld_dir, tiny_bert, tmp_path, cache, monkeypatch):
    def killed(tensors, path, metadata=None):
        with open(path, "wb") as handle:
            handle.write(b"half of a file")
        raise KeyboardInterrupt  # the build stops here, mid-write
    monkeypatch.setattr("recognize.checkpoint.save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        train(frozen(meld_dir, tiny_bert, tmp_path / "killed"))
    assert not list(cache.iterdir())  # the temp file is gone, nothing under an entry's name
    monkeypatch.setattr("recognize.checkpoint.save_file", save_file)
    (cache / ".T-tiny-bert-train-0.features.safetensors.abc.tmp").write_bytes(b"left by a SIGKILL")
    train(frozen(meld_dir, tiny_bert, tmp_path / "again"))
    assert len(list(cache.glob(f"*{SUFFIX}"))) == 3


def test_cache_build_takes_an_earlier_stage_and_refuses_training_flags(meld_dir, tiny_bert, tmp_path, cache, monkeypatch):
    """`cache build --init-from STAGE1` builds the tuned encoder's features, so the frozen
    stage 2 runs no encoder; a flag that only training reads is refused, not ignored."""
    stage1 = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="full", epochs=1, lr=1e-3,
                                    output_dir=str(tmp_path / "ck")))
    build = ["cache", "build", str(meld_dir), "--text-model", str(tiny_bert), "--mode", "frozen", "--init-from", str(stage1)]
    result = CliRunner().invoke(app, build)
    assert result.exit_code == 0, result.output
    calls = count_forwards(monkeypatch, TextEncoder)
    train(frozen(meld_dir, tiny_bert, tmp_path / "stage2", init_from=[str(stage1)]))
    assert calls[0] == 0

    result = CliRunner().invoke(app, [*build, "--epochs", "3", "--label-type", "sentiment"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: cache build: --label-type, --epochs: only `train` takes them "
                                     "(cache build computes the encoders' features, whatever is trained on them)")


def test_cache_build_help_lists_only_the_flags_it_takes():
    shown = CliRunner().invoke(app, ["cache", "build", "--help"], env={"COLUMNS": "200"}).output
    flags = {cli_flag(name).lstrip("-") for name in FEATURE_SETTINGS}
    listed = set(re.findall(r"^  --([a-z-]+)", shown, re.MULTILINE)) - {"help"}  # each option's line, not flags its help names
    assert listed == flags  # not --epochs, --label-type, --teacher...: those it refuses


def test_two_processes_building_one_entry_leave_one_valid_entry(meld_dir, tiny_bert, tmp_path, cache):
    command = [sys.executable, "-m", "recognize", "cache", "build", str(meld_dir), "--text-model", str(tiny_bert)]
    environment = {**os.environ, "EMOTION_RECOGNIZE_CACHE": str(cache)}
    builders = [subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    for builder in builders:
        _, errors = builder.communicate(timeout=300)
        assert builder.returncode == 0, errors
    entries = list_entries(cache)
    assert len(entries) == 3 and not any("error" in e for e in entries)
    assert not list(cache.glob(".*.tmp"))
    config = frozen(meld_dir, tiny_bert, tmp_path)
    built = build_model(config)
    for split, rows in (("train", 1638), ("dev", 336), ("test", 332)):
        tokens = tokenize_rows(load_split(meld_dir, split), built.tokenizer, config.context, config.max_length)
        entry = Entry.for_key(cache_root(), feature_key(config, built, "T", split, None, tokens))
        assert entry.load(rows) is None


def test_audio_features_are_cached_with_their_clips(tmp_path, cache, monkeypatch):
    raw = write_synthetic_meld_raw(tmp_path / "raw", seed=2, dialogues={"train": 4, "dev": 2, "test": 2})
    prepare(raw, tmp_path / "MELD", workers=1)
    speech = write_tiny_wav2vec2(tmp_path / "tiny-wav2vec2")
    config = ExperimentConfig(data=str(tmp_path / "MELD"), modal="A", audio_model=str(speech), mode="frozen", epochs=2,
                              workers=0, output_dir=str(tmp_path / "ck"))
    calls = count_forwards(monkeypatch, AudioEncoder)
    first = train(config)
    assert calls[0] > 0
    calls[0] = 0
    again = train(ExperimentConfig.from_dict({**config.to_dict(), "task": "sentiment"}))
    assert calls[0] == 0
    missing = json.loads((again / "metrics.json").read_text())["missing_media"]
    assert missing == json.loads((first / "metrics.json").read_text())["missing_media"]
    clip = next((tmp_path / "MELD" / "audios" / "dev").glob("*.flac"))
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))  # the clip was replaced
    train(ExperimentConfig.from_dict({**config.to_dict(), "task": "sentiment", "output_dir": str(tmp_path / "ck2")}))
    assert calls[0] > 0  # the dev entry was built again


def test_frozen_speech_results_are_the_same_with_and_without_the_cache(tmp_path, cache):
    """A speech model without an attention mask (group-norm wav2vec2) hears a batch's padding:
    frozen, it must encode each clip alone in a training batch too, as the cache does."""
    raw = write_synthetic_meld_raw(tmp_path / "raw", seed=3, dialogues={"train": 4, "dev": 2, "test": 2})
    prepare(raw, tmp_path / "MELD", workers=1)
    for number, clip in enumerate(sorted((tmp_path / "MELD" / "audios").glob("*/*.flac"))):  # clips of unequal lengths
        wave, rate = soundfile.read(clip, dtype="float32")
        soundfile.write(clip, wave[: max(800, len(wave) * (1 + number % 4) // 4)], rate)
    speech = write_tiny_wav2vec2(tmp_path / "tiny-wav2vec2")
    assert not AudioEncoder(load_backbone(str(speech))).pass_mask
    config = ExperimentConfig(data=str(tmp_path / "MELD"), modal="A", audio_model=str(speech), mode="frozen", epochs=2,
                              lr=1e-2, batch_size=8, workers=0, output_dir=str(tmp_path / "a"))
    with_cache = train(config)
    without = train(ExperimentConfig.from_dict({**config.to_dict(), "cache": False, "output_dir": str(tmp_path / "b")}))

    a, b = (load_file(str(folder / "model.safetensors")) for folder in (with_cache, without))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    history = [(folder / "history.csv").read_text().splitlines() for folder in (with_cache, without)]
    losses = [[float(line.split(",")[1]) for line in lines[1:]] for lines in history]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)


def test_data2vec_audio_entries_are_keyed_apart_from_those_built_in_batches(meld_dir, tmp_path):
    """data2vec-audio hears the padding beside a clip, so its entries are computed one clip at
    a time since 2026-11-27: an entry built in batches before then is not served. Group-norm
    models were always encoded one clip at a time: their keys stay as they were."""
    torch.manual_seed(0)
    data2vec = tmp_path / "tiny-data2vec-audio"
    Data2VecAudioModel(Data2VecAudioConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                           conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                                           num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)).save_pretrained(data2vec)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(data2vec)
    keys = {}
    for name, folder in (("data2vec", data2vec), ("wav2vec2", write_tiny_wav2vec2(tmp_path / "tiny-wav2vec2"))):
        config = ExperimentConfig(data=str(meld_dir), modal="A", audio_model=str(folder), mode="frozen")
        built = build_model(config)
        keys[name] = feature_key(config, built, "A", "train", None)["preprocessing"]
        keys[f"{name} as a teacher"] = teacher_key(str(folder), config, {"run_name": name}, built, "train", {})
    assert keys["data2vec"].get("clip_by_clip") is True
    assert "clip_by_clip" not in keys["wav2vec2"]
    assert keys["data2vec as a teacher"].get("audio_clip_by_clip") is True  # a teacher's outputs likewise
    assert "audio_clip_by_clip" not in keys["wav2vec2 as a teacher"]


def test_cache_clear_removes_the_entries_a_pattern_names_and_all_only_when_asked(tmp_path):
    names = ["T-tiny-bert-train-0a1b", "T-tiny-bert-dev-2c3d", "A-tiny-wav2vec2-train-4e5f"]
    for name in names:
        (tmp_path / f"{name}{SUFFIX}").write_bytes(b"entry")
    (tmp_path / f".T-tiny-bert-test-6a7b{SUFFIX}.123.tmp").write_bytes(b"half")  # a killed build's leftover
    runner = CliRunner()

    refused = runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path)])
    assert refused.exit_code != 0
    assert refused.output.strip() == ("error: cache clear: give a PATTERN (part of the file names `cache ls` shows) "
                                      "or --all, not neither")
    assert len(list(tmp_path.iterdir())) == 4

    cleared = runner.invoke(app, ["cache", "clear", "tiny-bert", "--cache-dir", str(tmp_path)])
    assert cleared.exit_code == 0, cleared.output
    assert [p.name for p in tmp_path.iterdir()] == [f"A-tiny-wav2vec2-train-4e5f{SUFFIX}"]

    assert runner.invoke(app, ["cache", "clear", "wav2vec2", "--all", "--cache-dir", str(tmp_path)]).exit_code != 0
    assert runner.invoke(app, ["cache", "clear", "--all", "--cache-dir", str(tmp_path)]).exit_code == 0
    assert list(tmp_path.iterdir()) == []
