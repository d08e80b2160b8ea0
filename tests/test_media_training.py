"""A-only and V-only training end to end: a generated MELD.Raw folder (H.264 + AAC clips
whose tone and colour follow the emotion, with the release's broken cases) is prepared,
then tiny Wav2Vec2 / VideoMAE / ViViT encoders learn the signal in each mode; missing and
unreadable clips are skipped or zero-filled and masked, and counted."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperFeatureExtractor

from recognize import ExperimentConfig, evaluate, train
from recognize.builder import build_model, make_split
from recognize.dataset.meld import label_ids, load_split
from recognize.dataset.prepare import prepare
from recognize.dataset.synthetic import broken_cases, write_synthetic_meld_raw
from recognize.errors import RecognizeError
from recognize.model.fusion import FUSIONS
from recognize.predictor import predict_utterance
from recognize.tiny import write_tiny_videomae, write_tiny_vivit, write_tiny_wav2vec2, write_tiny_whisper

from helpers import history_without_time, train_interrupted

DIALOGUES = {"train": 24, "dev": 6, "test": 6}
RUNS = {  # name -> (modal, mode, encoder, learning rate, epochs)
    "A-full": ("A", "full", "tiny-wav2vec2", 1e-3, 6),
    "A-lora": ("A", "lora", "tiny-wav2vec2", 2e-2, 8),
    "A-frozen": ("A", "frozen", "tiny-wav2vec2", 1e-2, 10),
    "V-full": ("V", "full", "tiny-videomae", 1e-3, 6),
    "V-lora": ("V", "lora", "tiny-videomae", 2e-2, 8),
    "V-frozen": ("V", "frozen", "tiny-vivit", 1e-2, 10),
}
FOLDER_NAMES = {"A-full": "A--ET(tiny-wav2vec2)", "A-lora": "A--EL(tiny-wav2vec2)", "A-frozen": "A--EF(tiny-wav2vec2)",
                "V-full": "V--ET(tiny-videomae)", "V-lora": "V--EL(tiny-videomae)", "V-frozen": "V--EF(tiny-vivit)"}


@pytest.fixture(scope="module")
def media_meld(tmp_path_factory):
    """A prepared MELD folder with audios/ and videos/, from a generated MELD.Raw with broken cases."""
    tmp = tmp_path_factory.mktemp("media")
    raw = write_synthetic_meld_raw(tmp / "raw", seed=0, dialogues=DIALOGUES)
    prepare(raw, tmp / "MELD", workers=1)
    return tmp / "MELD", broken_cases(raw)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Tiny speech and video encoder folders by name."""
    tmp = tmp_path_factory.mktemp("encoders")
    return {"tiny-wav2vec2": write_tiny_wav2vec2(tmp / "tiny-wav2vec2"), "tiny-videomae": write_tiny_videomae(tmp / "tiny-videomae"),
            "tiny-vivit": write_tiny_vivit(tmp / "tiny-vivit")}


def media_config(media_meld, encoders, output_dir, name: str, **overrides) -> ExperimentConfig:
    """The configuration of run `name` of RUNS on the prepared folder."""
    modal, mode, encoder, lr, epochs = RUNS[name]
    model = {"audio_model" if modal == "A" else "video_model": str(encoders[encoder])}
    settings = dict(data=str(media_meld[0]), modal=modal, mode=mode, lr=lr, epochs=epochs, batch_size=16, workers=0,
                    output_dir=str(output_dir), **model)
    return ExperimentConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def runs(media_meld, encoders, tmp_path_factory) -> dict:
    """One finished run per entry of RUNS."""
    output = tmp_path_factory.mktemp("checkpoints")
    return {name: train(media_config(media_meld, encoders, output, name)) for name in RUNS}


def majority_weighted_f1(meld_dir, split: str) -> float:
    """Weighted-F1 on `split` of always predicting the most frequent training emotion: chance."""
    majority = np.bincount(label_ids(load_split(meld_dir, "train"), "emotion")).argmax()
    share = float(np.mean(label_ids(load_split(meld_dir, split), "emotion") == majority))
    return share * (2 * share / (1 + share))


@pytest.mark.parametrize("name", list(RUNS))
def test_each_modality_and_mode_learns_the_media_signal(runs, media_meld, name):
    metrics = json.loads((runs[name] / "metrics.json").read_text())
    assert runs[name].name == FOLDER_NAMES[name]
    assert metrics["dev"]["weighted_f1"] > majority_weighted_f1(media_meld[0], "dev") + 0.3
    assert metrics["test"]["weighted_f1"] > majority_weighted_f1(media_meld[0], "test") + 0.25


@pytest.mark.parametrize("name, projections", [("A-lora", {"q_proj", "v_proj"}), ("V-lora", {"query", "value"})])
def test_lora_adapts_the_query_and_value_projections_whatever_their_names(runs, name, projections):
    stored = load_file(str(runs[name] / "model.safetensors"))
    adapted = {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in stored if ".lora_" in key}
    assert adapted == projections
    assert all(".lora_" in key or key.startswith("head.") for key in stored)


def test_full_mode_trains_the_transformer_but_not_the_speech_feature_encoder(runs, encoders):
    stored = load_file(str(runs["A-full"] / "model.safetensors"))
    base = load_file(str(encoders["tiny-wav2vec2"] / "model.safetensors"))
    trained = {key.removeprefix("encoders.A.backbone.") for key in stored if key.startswith("encoders.A.")}
    assert trained == {key for key in base if not key.startswith("feature_extractor.")}
    layer = "encoder.layers.0.attention.q_proj.weight"
    assert not torch.equal(stored[f"encoders.A.backbone.{layer}"], base[layer])


@pytest.mark.parametrize("name, modality", [("A-full", "A"), ("V-full", "V")])
def test_metrics_count_the_rows_each_split_lost_or_zero_filled(runs, media_meld, name, modality):
    meld_dir, cases = media_meld
    metrics = json.loads((runs[name] / "metrics.json").read_text())
    # audio: the unreadable clip and the clip without sound have no flac; video: only the unreadable clip fails
    lost_in_train = ["unreadable", "no_audio"] if modality == "A" else ["unreadable"]
    train_examples = sorted(cases[case][1][0] for case in lost_in_train)
    missing_in_train, unreadable_in_train = (2, 0) if modality == "A" else (0, 1)
    assert metrics["missing_media"] == {
        "train": {modality: {"missing": missing_in_train, "unreadable": unreadable_in_train, "failed_on_read": 0,
                             "examples": train_examples}, "rows_skipped": len(lost_in_train), "rows_zero_filled": 0},
        "dev": {modality: {"missing": 1, "unreadable": 0, "failed_on_read": 0, "examples": cases["missing"][1]},
                "rows_skipped": 0, "rows_zero_filled": 1},
        "test": {modality: {"missing": 0, "unreadable": 0, "failed_on_read": 0, "examples": []}, "rows_skipped": 0,
                 "rows_zero_filled": 0},
    }
    assert metrics["train_samples"] == len(load_split(meld_dir, "train")) - len(lost_in_train)


@pytest.mark.parametrize("name", ["A-full", "V-frozen"])
def test_eval_keeps_every_row_and_reproduces_the_recorded_dev_metrics(runs, media_meld, name):
    meld_dir, cases = media_meld
    recorded = json.loads((runs[name] / "metrics.json").read_text())["dev"]

    result = evaluate(runs[name], split="dev")

    assert result["weighted_f1"] == pytest.approx(recorded["weighted_f1"], abs=1e-9)
    assert result["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9)
    assert result["missing_media"]["rows_zero_filled"] == 1
    with open(runs[name] / "predictions-dev.csv") as handle:
        predictions = list(csv.DictReader(handle))
    dev = load_split(meld_dir, "dev")
    assert [(int(p["dialogue_id"]), int(p["utterance_id"])) for p in predictions] == list(zip(dev["dialogue_id"], dev["utterance_id"]))


def test_a_resumed_speech_run_equals_an_uninterrupted_one(media_meld, encoders, tmp_path, monkeypatch):
    """Wav2Vec2 draws its training-time masks from numpy's generator, which must be seeded
    per epoch like torch's for a resumed run to repeat an uninterrupted one."""
    uninterrupted = train(media_config(media_meld, encoders, tmp_path / "whole", "A-full", epochs=3))
    config = media_config(media_meld, encoders, tmp_path / "parts", "A-full", epochs=3)
    train_interrupted(config, 1, monkeypatch)
    resumed = train(config, resume=True)

    assert history_without_time(resumed) == history_without_time(uninterrupted)
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (uninterrupted, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["A-full", "A-frozen"])
def test_eval_counts_a_clip_that_passes_the_probe_but_fails_to_decode(runs, media_meld, tmp_path, name):
    """A flac whose frames are damaged mid-file (its header and last frame intact) is only
    found when read: the row is zero-filled, and eval-test.json counts and names the clip."""
    data = tmp_path / "MELD"
    shutil.copytree(media_meld[0], data)
    damaged = max((data / "audios" / "test").glob("*.flac"), key=lambda path: path.stat().st_size)
    content = bytearray(damaged.read_bytes())
    content[len(content) // 3:len(content) // 3 + 200] = b"\x55" * 200
    damaged.write_bytes(bytes(content))

    checkpoint = shutil.copytree(runs[name], tmp_path / runs[name].name)

    result = evaluate(checkpoint, split="test", data=str(data))

    assert result["missing_media"] == {"A": {"missing": 0, "unreadable": 0, "failed_on_read": 1, "examples": [damaged.stem]},
                                       "rows_skipped": 0, "rows_zero_filled": 1}
    assert json.loads((checkpoint / "eval-test.json").read_text())["missing_media"] == result["missing_media"]
    assert sum(1 for _ in open(checkpoint / "predictions-test.csv")) == len(load_split(data, "test")) + 1


@pytest.mark.parametrize("name, modality", [("A-full", "audio"), ("V-frozen", "video")])
def test_predict_reads_a_clip_as_eval_does(runs, media_meld, name, modality):
    meld_dir, cases = media_meld
    broken = {name for _, names in cases.values() for name in names}
    evaluate(runs[name], split="dev")
    with open(runs[name] / "predictions-dev.csv") as handle:
        rows = {f"dia{r['dialogue_id']}_utt{r['utterance_id']}": r for r in csv.DictReader(handle)}
    # a whole clip, and the one_frame case: an eighth of the others' length, so padded when batched with them
    # (the tiny Wav2Vec2 normalises with group norm and takes no mask, as wav2vec2-base does)
    clips = [next(c for c in rows if c not in broken), cases["one_frame"][1][0]]
    folder, extension = ("audios", "flac") if modality == "audio" else ("videos", "mp4")
    for clip in clips:
        probabilities = predict_utterance(runs[name], **{modality: str(meld_dir / folder / "dev" / f"{clip}.{extension}")})
        assert {k: round(v, 6) for k, v in probabilities.items()} == pytest.approx(
            {k[2:]: float(v) for k, v in rows[clip].items() if k.startswith("p_")}, abs=2e-6), clip
        if modality == "audio":  # MELD's own mp4, its sound decoded as prepare extracted the flac (less its 16-bit rounding)
            from_video = predict_utterance(runs[name], audio=str(meld_dir / "videos" / "dev" / f"{clip}.mp4"))
            assert from_video == pytest.approx(probabilities, abs=1e-4), clip
    with pytest.raises(RecognizeError, match=rf"--{modality}: .*nowhere.{extension}: file not found"):
        predict_utterance(runs[name], **{modality: str(meld_dir / f"nowhere.{extension}")})


def test_a_whisper_of_a_10_s_window_trains_evaluates_and_predicts_and_clips_past_it_are_refused(media_meld, tmp_path):
    """Whisper's released models hear 30 s windows; one saved with chunk_length 10 (500
    encoder positions) works end to end, and what its window cannot hold is an error, never
    a silent cut: --max-audio-seconds past the window, an extractor of another window."""
    meld_dir, cases = media_meld
    whisper = write_tiny_whisper(tmp_path / "whisper-10s", chunk_length=10)
    settings = dict(data=str(meld_dir), modal="A", mode="full", audio_model=str(whisper), lr=1e-3, epochs=1, batch_size=16,
                    workers=0, max_audio_seconds=10)
    folder = train(ExperimentConfig(output_dir=str(tmp_path / "ok"), **settings))
    recorded = json.loads((folder / "metrics.json").read_text())["dev"]
    assert evaluate(folder, split="dev")["weighted_f1"] == pytest.approx(recorded["weighted_f1"], abs=1e-9)
    with open(folder / "predictions-dev.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if f"dia{r['dialogue_id']}_utt{r['utterance_id']}" == cases["one_frame"][1][0])
    probabilities = predict_utterance(folder, audio=str(meld_dir / "audios" / "dev" / f"{cases['one_frame'][1][0]}.flac"))
    assert probabilities == pytest.approx({k[2:]: float(v) for k, v in row.items() if k.startswith("p_")}, abs=2e-6)

    with pytest.raises(RecognizeError, match=rf"^--max-audio-seconds 12: {whisper} hears 10 s at a time \(its feature "
                                             r"extractor's chunk_length\) and would drop the rest of a longer clip; give at most 10$"):
        train(ExperimentConfig(output_dir=str(tmp_path / "long"), **{**settings, "max_audio_seconds": 12}))
    WhisperFeatureExtractor(feature_size=80).save_pretrained(whisper)  # 30 s windows, 3000 frames, for 500 positions
    with pytest.raises(RecognizeError, match=rf"^--audio-model {whisper}: its feature extractor makes 3000 frames of 80 mel "
                                             r"bins \(30 s windows\) and its encoder takes 1000 of 80 \(max_source_positions 500, "
                                             r"num_mel_bins 80\): the two do not belong together$"):
        train(ExperimentConfig(output_dir=str(tmp_path / "mismatch"), **settings))
    assert not (tmp_path / "long").exists() and not (tmp_path / "mismatch").exists()


def test_a_missing_clip_is_masked_so_its_prediction_is_the_heads_bias(runs, media_meld):
    meld_dir, cases = media_meld
    evaluate(runs["V-full"], split="dev")
    head_bias = load_file(str(runs["V-full"] / "model.safetensors"))["head.1.bias"]
    expected = torch.softmax(head_bias.double(), dim=0).numpy()
    with open(runs["V-full"] / "predictions-dev.csv") as handle:
        predictions = list(csv.DictReader(handle))
    missing = cases["missing"][1][0]
    row = next(p for p in predictions if f"dia{p['dialogue_id']}_utt{p['utterance_id']}" == missing)
    labels = json.loads((runs["V-full"] / "config.json").read_text())["labels"]
    assert [float(row[f"p_{label}"]) for label in labels] == pytest.approx(expected, abs=2e-6)
    masked = predict_utterance(runs["V-full"], mask_missing=True)  # predict masks a clip not given as eval does
    assert [masked[label] for label in labels] == pytest.approx(expected, abs=2e-6)


@pytest.mark.parametrize("cache", [False, True])
def test_zero_policy_trains_on_every_row(media_meld, encoders, tmp_path, cache):
    config = media_config(media_meld, encoders, tmp_path, "A-frozen", missing_media="zero", epochs=1, cache=cache)
    built = build_model(config)

    data = make_split(config, built, "train", training=True)

    assert len(data.dataset) == len(load_split(media_meld[0], "train"))
    assert (data.media_report["rows_skipped"], data.media_report["rows_zero_filled"]) == (0, 2)
    items = [data.dataset[i] for i in range(len(data.dataset))]
    absent = [not item["A_present"] for item in items] if cache else [item["A"] is None for item in items]
    assert sum(absent) == 2
    if cache:  # served from the feature cache: an absent clip's vector is zero
        assert all(not item["A_features"].any() for item, gone in zip(items, absent) if gone)


def test_skip_policy_drops_the_rows_without_clips(media_meld, encoders, tmp_path):
    meld_dir, cases = media_meld
    config = media_config(media_meld, encoders, tmp_path, "V-full")
    data = make_split(config, build_model(config), "train", training=True)

    names = {f"dia{d}_utt{u}" for d, u in zip(data.rows["dialogue_id"], data.rows["utterance_id"])}
    assert len(data.dataset) == len(load_split(meld_dir, "train")) - 1
    assert cases["unreadable"][1][0] not in names and cases["no_audio"][1][0] in names


def test_workers_read_media_in_other_processes_with_the_same_result(runs, media_meld, encoders, tmp_path):
    config = media_config(media_meld, encoders, tmp_path, "A-full", workers=2)

    folder = train(config)

    assert load_file(str(folder / "model.safetensors")).keys() == load_file(str(runs["A-full"] / "model.safetensors")).keys()
    with_workers = json.loads((folder / "metrics.json").read_text())
    without = json.loads((runs["A-full"] / "metrics.json").read_text())
    assert with_workers["dev"] == without["dev"] and with_workers["test"] == without["test"]


def test_a_folder_without_media_is_refused_before_training(meld_dir, encoders, tmp_path):
    config = ExperimentConfig(data=str(meld_dir), modal="A", audio_model=str(encoders["tiny-wav2vec2"]),
                              output_dir=str(tmp_path / "ck"))
    with pytest.raises(RecognizeError, match=r"audios/train: no such folder; --modal A reads audios/train/dia\{D\}_utt\{U\}\.flac"):
        train(config)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_text_and_audio_fused_train_evaluate_and_keep_every_row(media_meld, encoders, tiny_bert, tmp_path, fusion):
    meld_dir, cases = media_meld
    config = ExperimentConfig(data=str(meld_dir), modal="A+T", fusion=fusion, text_model=str(tiny_bert), pooling="mean",
                              audio_model=str(encoders["tiny-wav2vec2"]), lr=1e-3, head_lr=1e-2, epochs=6, batch_size=16,
                              workers=0, fusion_dim=16, output_dir=str(tmp_path))

    folder = train(config)
    result = evaluate(folder, split="dev")

    assert folder.name == f"T+A--ET--{fusion.upper()}(tiny-bert+tiny-wav2vec2)"
    assert result["weighted_f1"] > majority_weighted_f1(meld_dir, "dev") + 0.3
    assert result["missing_media"]["rows_zero_filled"] == 1
    assert sum(1 for _ in open(folder / "predictions-dev.csv")) == len(load_split(meld_dir, "dev")) + 1
    stored = load_file(str(folder / "model.safetensors"))
    assert any(key.startswith("fusion.") for key in stored)
