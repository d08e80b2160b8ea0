"""The research workflow on tiny text runs: several seeds into one setting folder with its
aggregate, eval's per-class table and confusion picture, `--compare` with its paired
bootstrap interval, `predict` giving the probabilities `eval` gives for the same row (and,
on a tiny audio run, reading a CSV of clips, its bad rows named in one-line errors),
cross-validation folds that keep dialogues whole, and TensorBoard logs."""

import csv
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recognize import ExperimentConfig, RecognizeError, evaluate, train
from recognize.cli import app
from recognize.compare import paired_bootstrap, weighted_f1
from recognize.crossval import cross_validate, dialogue_folds, write_fold
from recognize.dataset.meld import load_split, read_raw_csv
from recognize.dataset.synthetic import write_joint_meld
from recognize.plots import row_normalised
from recognize.predictor import predict_file, predict_utterance
from recognize.run import train_seeds
from recognize.seeds import parse_seeds
from recognize.tiny import write_tiny_wav2vec2

from helpers import history_without_time, load_script, train_interrupted


@pytest.fixture(scope="module")
def seeded(meld_dir, tiny_bert, tmp_path_factory):
    """Full tuning of a tiny BERT with seeds 1 and 2, with one previous utterance as context."""
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="full", lr=2e-3, epochs=4,
                              batch_size=16, context=1, output_dir=str(tmp_path_factory.mktemp("seeds")))
    return train_seeds(config, [1, 2])


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory) -> tuple[Path, Path]:
    """An audio-only run (one epoch, tiny Wav2Vec2 frozen) and three of its test clips, copied
    into a folder of their own as clips/{name}.flac."""
    tmp = tmp_path_factory.mktemp("audio")
    meld = write_joint_meld(tmp / "MELD", dialogues={"train": 2, "dev": 1, "test": 1})
    config = ExperimentConfig(data=str(meld), modal="A", audio_model=str(write_tiny_wav2vec2(tmp / "tiny-wav2vec2")),
                              mode="frozen", epochs=1, workers=0, output_dir=str(tmp / "checkpoints"))
    (tmp / "inputs" / "clips").mkdir(parents=True)
    for name in ("dia1_utt0", "dia1_utt1", "dia1_utt2"):
        shutil.copy(meld / "audios" / "test" / f"{name}.flac", tmp / "inputs" / "clips")
    return train(config), tmp / "inputs"


def test_each_seed_gets_its_folder_and_the_setting_its_aggregate(seeded):
    assert seeded.name == "T--ET(tiny-bert)"
    assert sorted(p.name for p in seeded.iterdir()) == ["aggregate.json", "seed-1", "seed-2"]
    per_seed = [json.loads((seeded / f"seed-{s}" / "metrics.json").read_text()) for s in (1, 2)]
    histories = [(seeded / f"seed-{s}" / "history.csv").read_text() for s in (1, 2)]
    assert histories[0] != histories[1]  # each seed trained its own way
    summary = json.loads((seeded / "aggregate.json").read_text())
    assert summary["seeds"] == [1, 2]
    for split in ("dev", "test"):
        for score in ("accuracy", "weighted_f1", "macro_f1"):
            values = [m[split][score] for m in per_seed]
            assert summary[split][score] == {"mean": pytest.approx(statistics.mean(values)),
                                             "std": pytest.approx(statistics.stdev(values)), "values": values}
    record = json.loads((seeded / "seed-2" / "config.json").read_text())
    assert (record["experiment"]["seed"], record["experiment"]["seed_folder"]) == (2, True)
    assert (record["experiment"]["precision"], record["resolved_precision"]) == ("auto", "no")  # what auto was on this CPU


def test_seeds_resume_keeps_finished_seeds_and_resumes_the_interrupted_one(seeded, tmp_path, monkeypatch):
    """Seed 1 finished, seed 2 was killed after its epoch 2: --resume keeps seed 1's run,
    continues seed 2, and the setting ends as the uninterrupted one did."""
    config = ExperimentConfig.from_checkpoint(seeded / "seed-1", seed_folder=False, output_dir=str(tmp_path))
    seed_one = shutil.copytree(seeded / "seed-1", config.setting_dir / "seed-1")
    kept = (seed_one / "model.safetensors").stat().st_mtime_ns
    train_interrupted(ExperimentConfig.from_dict({**config.to_dict(), "seed": 2, "seed_folder": True}), 2, monkeypatch)

    train_seeds(config, [1, 2], resume=True)

    assert (seed_one / "model.safetensors").stat().st_mtime_ns == kept
    assert history_without_time(config.setting_dir / "seed-2") == history_without_time(seeded / "seed-2")
    assert json.loads((config.setting_dir / "aggregate.json").read_text()) == json.loads((seeded / "aggregate.json").read_text())
    with pytest.raises(RecognizeError, match=r"seed-1: --resume needs the earlier run's settings; these differ: --lr 0.002 -> 0.01$"):
        train_seeds(ExperimentConfig.from_dict({**config.to_dict(), "lr": 1e-2}), [1, 2], resume=True)
    longer = ExperimentConfig.from_dict({**config.to_dict(), "epochs": config.epochs + 1})
    with pytest.raises(RecognizeError, match=rf"these differ: --epochs {config.epochs} -> {config.epochs + 1}; to train a "
                                             r"finished run longer, start a stage from it \(--init-from\)"):
        train_seeds(longer, [1, 2], resume=True)
    stage = ExperimentConfig.from_dict({**config.to_dict(), "init_from": [str(seeded / "seed-1")]})  # a list setting
    with pytest.raises(RecognizeError, match=rf"these differ: --init-from none -> {re.escape(str(seeded / 'seed-1'))}$"):
        train_seeds(stage, [1, 2], resume=True)


def test_a_later_stage_with_seeds_starts_each_seed_from_the_same_seed(seeded):
    stage2 = ExperimentConfig.from_checkpoint(seeded / "seed-1", mode="frozen", init_from=[str(seeded)], epochs=1,
                                              seed_folder=False)
    group = train_seeds(stage2, [1, 2])
    for seed in (1, 2):
        lineage = json.loads((group / f"seed-{seed}" / "config.json").read_text())["lineage"]
        assert lineage[0]["folder"] == str(seeded / f"seed-{seed}")


@pytest.mark.parametrize("text, message", [("1,x", "is not a comma-separated list of integers"), ("3,3", "repeats a seed")])
def test_bad_seeds_are_refused(text, message):
    with pytest.raises(RecognizeError, match=f"--seeds: '{text}' {message}"):
        parse_seeds(text)


def test_eval_of_a_setting_folder_evaluates_every_seed(seeded):
    result = CliRunner().invoke(app, ["eval", str(seeded), "--split", "dev"])
    assert result.exit_code == 0, result.output
    summary = json.loads((seeded / "eval-dev.json").read_text())
    recorded = [json.loads((seeded / f"seed-{s}" / "metrics.json").read_text())["dev"]["weighted_f1"] for s in (1, 2)]
    assert summary["scores"]["weighted_f1"]["values"] == pytest.approx(recorded, abs=1e-9)
    assert "seed 1:" in result.output and "±" in result.output


def test_eval_writes_the_per_class_table_and_the_confusion_picture(seeded):
    folder = seeded / "seed-1"
    metrics = evaluate(folder, split="test")
    with open(folder / "per-class-test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == list(metrics["per_class"])
    for row in rows:
        expected = metrics["per_class"][row["class"]]
        assert {k: float(row[k]) for k in ("precision", "recall", "f1")} == pytest.approx(
            {k: expected[k] for k in ("precision", "recall", "f1")}, abs=1e-12)
        assert int(row["support"]) == expected["support"]
    assert (folder / "confusion-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    normalised = row_normalised(np.array([[3, 1], [0, 0]]))
    assert normalised.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_eval_names_the_files_it_wrote_and_replaces_an_old_picture(seeded, tmp_path):
    folder = shutil.copytree(seeded / "seed-1", tmp_path / "seed-1")
    (folder / "confusion-dev.png").write_bytes(b"an earlier evaluation's picture")
    result = CliRunner().invoke(app, ["eval", str(folder), "--split", "dev"])
    assert result.exit_code == 0, result.output
    assert (folder / "confusion-dev.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = "".join(result.output.split())  # wrapped to the console's width
    assert f"wrote{folder / 'eval-dev.json'},andpredictions-dev.csv,per-class-dev.csv,confusion-dev.pngbesideit" in printed


def test_bootstrap_interval_contains_zero_for_a_model_against_itself_and_not_for_a_much_better_one():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    guess = np.where(rng.random(300) < 0.5, truth, rng.integers(0, 3, 300))
    same = paired_bootstrap(truth, guess, guess, classes=3, resamples=200)
    assert same["difference"] == 0 and same["low"] <= 0 <= same["high"]
    better = np.where(rng.random(300) < 0.9, truth, guess)
    result = paired_bootstrap(truth, better, guess, classes=3, resamples=200)
    assert result["difference"] == pytest.approx(weighted_f1(truth, better, 3) - weighted_f1(truth, guess, 3))
    assert 0 < result["low"] < result["difference"] < result["high"]
    assert paired_bootstrap(truth, better, guess, classes=3, resamples=200) == result  # seeded


def test_compare_prints_both_and_the_interval(seeded):
    result = CliRunner().invoke(app, ["eval", str(seeded / "seed-1"), "--compare", str(seeded / "seed-1")])
    assert result.exit_code == 0, result.output
    assert "weighted-F1 A - B: +0.00 points, 95% paired bootstrap interval [+0.00, +0.00]" in result.output.replace("\n", " ")


def test_predict_gives_the_probabilities_eval_gives_for_the_same_rows(seeded, meld_dir, tmp_path):
    folder = seeded / "seed-1"
    evaluate(folder, split="test")
    with open(folder / "predictions-test.csv", newline="") as handle:
        evaluated = list(csv.DictReader(handle))
    rows = load_split(meld_dir, "test")
    for i in (0, 1, 5):  # row 0 opens a dialogue; the others have a previous utterance as context
        context = [f"{rows.speaker[i - 1]}: {rows.text[i - 1]}"] if i and rows.dialogue_id[i] == rows.dialogue_id[i - 1] else []
        assert rows.dialogue_id[i] == int(evaluated[i]["dialogue_id"]) and rows.utterance_id[i] == int(evaluated[i]["utterance_id"])
        probabilities = predict_utterance(folder, text=rows.text[i], speaker=rows.speaker[i], context=context)
        assert {k: round(v, 6) for k, v in probabilities.items()} == pytest.approx(
            {k[2:]: float(v) for k, v in evaluated[i].items() if k.startswith("p_")}, abs=2e-6)

    # the CSV as it is, and its rows shuffled: context still comes from the dialogue's earlier utterances
    shuffled = tmp_path / "shuffled.csv"
    read_raw_csv(meld_dir / "test_sent_emo.csv").sample(frac=1.0, random_state=0).to_csv(shuffled, index=False)
    for source in (meld_dir / "test_sent_emo.csv", shuffled):
        table = predict_file(folder, source)
        ids = [(int(r.Dialogue_ID), int(r.Utterance_ID)) for r in table.itertuples(index=False)]
        given = read_raw_csv(source)
        assert ids == [(int(d), int(u)) for d, u in zip(given["Dialogue_ID"], given["Utterance_ID"])]  # the file's order
        by_id = dict(zip(ids, table.itertuples(index=False)))
        for row in evaluated:
            predicted = by_id[(int(row["dialogue_id"]), int(row["utterance_id"]))]
            assert predicted.prediction == row["prediction"]
            assert predicted.p_joy == pytest.approx(float(row["p_joy"]), abs=2e-6)


def test_predict_of_a_future_context_model_reads_the_next_rows_as_eval_does(meld_dir, tiny_bert, tmp_path):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), epochs=1, lr=2e-3, batch_size=16,
                              context=1, future_context=2, output_dir=str(tmp_path))
    folder = train(config)
    evaluate(folder, split="test")
    evaluated = pd.read_csv(folder / "predictions-test.csv")
    table = predict_file(folder, meld_dir / "test_sent_emo.csv")
    assert list(table["prediction"]) == list(evaluated["prediction"])
    np.testing.assert_allclose(table["p_joy"], evaluated["p_joy"], atol=2e-6)
    alone = ExperimentConfig.from_checkpoint(folder, future_context=0, output_dir=str(tmp_path / "b"))
    assert not np.allclose(predict_file(folder, meld_dir / "test_sent_emo.csv")["p_joy"],
                           predict_file(train(alone), meld_dir / "test_sent_emo.csv")["p_joy"])


def test_predict_reads_a_csv_with_only_an_audio_column(audio_run):
    folder, inputs = audio_run
    clips = ["clips/dia1_utt2.flac", "clips/dia1_utt0.flac", "clips/dia1_utt1.flac", "clips/dia1_utt0.flac"]
    (inputs / "audio.csv").write_text("Audio\n" + "".join(f"{clip}\n" for clip in clips))

    result = CliRunner().invoke(app, ["predict", str(folder), "--input", str(inputs / "audio.csv"),
                                      "--output", str(inputs / "predictions.csv")])

    assert result.exit_code == 0, result.output
    with open(inputs / "predictions.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [row["Audio"] for row in predicted] == clips  # the file's order
    for clip, row in zip(clips, predicted):
        alone = predict_utterance(folder, audio=str(inputs / clip))
        assert {k[2:]: float(v) for k, v in row.items() if k.startswith("p_")} == pytest.approx(
            {k: round(v, 6) for k, v in alone.items()}, abs=2e-6)
        assert row["prediction"] == max(alone, key=alone.get)


def test_predict_numbers_the_rows_as_errors_do_passing_over_blank_lines(audio_run):
    """Blank lines and lines of spaces are not rows; a quoted text over two lines is one: the
    output's `row` is the number an error about that row gives."""
    folder, inputs = audio_run
    source = inputs / "blank-lines.csv"
    source.write_text('Audio,Speaker\n\nclips/dia1_utt2.flac,Joey\n\n   \nclips/dia1_utt0.flac,"Ross\nGeller"\n'
                      "clips/dia1_utt1.flac,Monica\n\n")

    result = CliRunner().invoke(app, ["predict", str(folder), "--input", str(source), "--output", str(inputs / "numbered.csv")])

    assert result.exit_code == 0, result.output
    with open(inputs / "numbered.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert list(predicted[0])[:4] == ["row", "Audio", "Speaker", "prediction"]
    assert [(row["row"], row["Audio"], row["Speaker"]) for row in predicted] == [
        ("1", "clips/dia1_utt2.flac", "Joey"), ("2", "clips/dia1_utt0.flac", "Ross\nGeller"), ("3", "clips/dia1_utt1.flac", "Monica")]
    for row in predicted:
        alone = predict_utterance(folder, audio=str(inputs / row["Audio"]))
        assert {k[2:]: float(v) for k, v in row.items() if k.startswith("p_")} == pytest.approx(
            {k: round(v, 6) for k, v in alone.items()}, abs=2e-6)
    source.write_text("Audio,Speaker\n\nclips/dia1_utt2.flac,Joey\n\n   \nclips/nowhere.flac,Ross\n")
    result = CliRunner().invoke(app, ["predict", str(folder), "--input", str(source)])
    assert result.stderr.strip() == f"error: {source}: row 2: column Audio: {inputs / 'clips' / 'nowhere.flac'}: file not found"


def test_predict_leaves_alone_a_csv_column_the_model_does_not_read(audio_run):
    folder, inputs = audio_run
    (inputs / "meld-like.csv").write_text("Utterance,Audio\nOh my God!,clips/dia1_utt0.flac\n")

    table = predict_file(folder, inputs / "meld-like.csv")

    assert table["Utterance"].tolist() == ["Oh my God!"]
    alone = predict_utterance(folder, audio=str(inputs / "clips" / "dia1_utt0.flac"))
    assert {name: float(table[f"p_{name}"][0]) for name in alone} == pytest.approx(alone, abs=2e-6)


def test_predict_mask_missing_masks_an_absent_clip_as_an_empty_cell_and_no_input_alike(audio_run):
    folder, inputs = audio_run
    (inputs / "gaps.csv").write_text("Audio,Speaker\nclips/dia1_utt0.flac,Joey\n,Ross\n")
    (inputs / "none.csv").write_text("Speaker\nRoss\n")

    gaps = predict_file(folder, inputs / "gaps.csv", mask_missing=True)
    masked = predict_utterance(folder, mask_missing=True)
    nothing = predict_file(folder, inputs / "none.csv", mask_missing=True)

    alone = predict_utterance(folder, audio=str(inputs / "clips" / "dia1_utt0.flac"))
    assert {name: float(gaps[f"p_{name}"][0]) for name in alone} == pytest.approx(alone, abs=2e-6)
    assert {name: float(gaps[f"p_{name}"][1]) for name in alone} == pytest.approx(masked, abs=2e-6)
    assert {name: float(nothing[f"p_{name}"][0]) for name in alone} == pytest.approx(masked, abs=2e-6)
    assert masked != pytest.approx(alone, abs=1e-3)
    result = CliRunner().invoke(app, ["predict", str(folder), "--speaker", "Ross"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: --audio: required, {folder} is an A model "
                                     "(--mask-missing predicts without it, as eval masks a missing clip)")


@pytest.mark.parametrize("lines, message", [
    (["Audio"], "--input {csv}: no data rows, only the header"),
    (["Audio,Speaker", "clips/dia1_utt0.flac,Joey", ",Ross"],
     "{csv}: row 2: column Audio: empty (--mask-missing masks the clip of such a row)"),
    (["Audio", "clips/dia1_utt0.flac", "clips/nowhere.flac"], "{csv}: row 2: column Audio: {clips}/nowhere.flac: file not found"),
    (["Audio,Dialogue_ID", "clips/dia1_utt0.flac,1", "clips/dia1_utt0.flac,"],  # it would share a dialogue with any other
     "{csv}: row 2: Dialogue_ID is empty; give every row its dialogue, or leave the column out"),
    (["Audio,row", "clips/dia1_utt0.flac,7"], "--input {csv}: has a column 'row', a name the output gives its own column "
                                             "(row, prediction, p_neutral, p_joy, p_surprise, p_anger, p_sadness, p_disgust, "
                                             "p_fear); rename it"),
    (["Audio,Speaker", "clips/dia1_utt0.flac,Joey, Ross"],
     "{csv}: line 2: 3 fields where the header has 2 (a comma, quote or line break in a text that is not quoted?)"),
])
def test_predict_input_errors_name_the_row_before_the_model_loads(audio_run, tmp_path, lines, message):
    folder, inputs = audio_run
    source = inputs / f"{tmp_path.name}.csv"
    source.write_text("\n".join(lines) + "\n")

    result = CliRunner().invoke(app, ["predict", str(folder), "--input", str(source), "--output", str(tmp_path / "out.csv")])

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {message.format(csv=source, clips=inputs / 'clips')}"]
    assert not (tmp_path / "out.csv").exists()


def test_predict_names_the_first_row_of_a_clip_that_does_not_decode(audio_run, tmp_path):
    folder, inputs = audio_run
    (inputs / "clips" / "broken.flac").write_bytes(b"fLaC cut short")
    source = inputs / "broken.csv"
    source.write_text("Audio,Dialogue_ID\nclips/dia1_utt0.flac,1\nclips/broken.flac,2\nclips/broken.flac,1\n")

    result = CliRunner().invoke(app, ["predict", str(folder), "--input", str(source)])

    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(  # row 3 is read first (dialogue 1), row 2 named
        f"error: {source}: row 2: column Audio: {inputs / 'clips' / 'broken.flac'}: cannot read audio (")


@pytest.mark.parametrize("arguments, message", [
    (["--text", "hi", "--audio", "clip.flac"], "--audio: {folder} is a T model; it has no audio encoder"),
    (["--text", "hi", "--output", "predictions.csv"], "--output: only with --input (a single utterance's probabilities are printed)"),
    (["--speaker", "Joey"], "--text: required, {folder} is a T model"),
    (["--text", "hi", "--input", "rows.csv"], "--input: give utterances either in the CSV or with --text/--audio/--video, not both"),
])
def test_predict_refuses_inputs_the_model_does_not_take_or_lacks(seeded, arguments, message):
    folder = seeded / "seed-1"
    result = CliRunner().invoke(app, ["predict", str(folder), *arguments])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {message.format(folder=folder)}"]


@pytest.mark.parametrize("folds", [3, 7])
def test_folds_never_share_a_dialogue_and_cover_the_split_once(meld_dir, folds):
    dialogues = load_split(meld_dir, "dev")["dialogue_id"]
    parts = dialogue_folds(dialogues, folds, seed=3)
    every = np.sort(np.concatenate(parts))
    assert every.tolist() == list(range(len(dialogues)))  # each row exactly once
    owners = [set(dialogues.iloc[p]) for p in parts]
    assert all(not (owners[i] & owners[j]) for i in range(folds) for j in range(i + 1, folds))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= dialogues.value_counts().max()  # balanced up to one dialogue
    assert [p.tolist() for p in dialogue_folds(dialogues, folds, seed=3)] == [p.tolist() for p in parts]
    with pytest.raises(RecognizeError, match=r"--folds: cross-validation needs at least 3 .*, got 2"):
        dialogue_folds(dialogues, 2)
    too_many = dialogues.nunique() + 1
    with pytest.raises(RecognizeError, match=rf"at most the split's {too_many - 1} dialogues, got {too_many}"):
        dialogue_folds(dialogues, too_many)


def test_fold_folders_link_the_media_of_the_data_they_were_written_from_last(tmp_path):
    raw = pd.DataFrame({"Dialogue_ID": ["1", "2", "3"], "Utterance": ["a", "b", "c"]})
    parts = {"train": np.array([0]), "dev": np.array([1]), "test": np.array([2])}
    for name in ("MELD-A", "MELD-B"):
        (tmp_path / name / "videos" / "dev").mkdir(parents=True)
        fold = write_fold(tmp_path / name, "dev", raw, parts, tmp_path / "cv-dev-3" / "fold-0" / "data")
    assert {(fold / "videos" / part).resolve() for part in ("train", "dev", "test")} == {tmp_path / "MELD-B" / "videos" / "dev"}


def test_cross_validation_needs_three_folds(meld_dir, tmp_path):
    with pytest.raises(RecognizeError, match=r"--folds: cross-validation needs at least 3 .*, got 2"):
        cross_validate(ExperimentConfig(data=str(meld_dir), output_dir=str(tmp_path)), split="dev", folds=2)


def test_cross_validation_names_what_a_data_folder_without_the_split_holds(tmp_path):
    (tmp_path / "train_sent_emo.csv").write_text("Dialogue_ID\n1\n")
    (tmp_path / "val_sent_emo.csv").write_text("Dialogue_ID\n2\n")
    with pytest.raises(RecognizeError) as raised:
        cross_validate(ExperimentConfig(data=str(tmp_path), output_dir=str(tmp_path / "out")), split="dev", folds=3)
    assert str(raised.value) == (f"{tmp_path / 'dev_sent_emo.csv'}: CSV not found in the data folder "
                                 "(it holds train_sent_emo.csv, val_sent_emo.csv)")
    assert not (tmp_path / "out").exists()


def test_cross_validation_script_trains_each_fold_and_summarises_them(meld_dir, tiny_bert, tmp_path, capsys):
    load_script("evaluation/cross_validation.py").main(
        [str(meld_dir), "--split", "train", "--modal", "T", "--mode", "full", "--text-model", str(tiny_bert), "--folds", "3",
         "--epochs", "3", "--lr", "2e-3", "--batch-size", "16", "--output-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "cv-train-3" / "cross-validation.json").read_text())
    rows = load_split(meld_dir, "train")
    assert sum(f["rows"] for f in summary["per_fold"]) == len(rows)
    for fold in summary["per_fold"]:
        data = tmp_path / "cv-train-3" / f"fold-{fold['fold']}" / "data"
        tested = load_split(data, "test")
        assert len(tested) == fold["rows"]
        assert not set(tested["dialogue_id"]) & set(load_split(data, "train")["dialogue_id"])
        recorded = json.loads((data.parent / "T--ET(tiny-bert)" / "metrics.json").read_text())["test"]
        assert fold["weighted_f1"] == recorded["weighted_f1"]
    values = [f["weighted_f1"] for f in summary["per_fold"]]
    assert summary["weighted_f1"] == {"mean": pytest.approx(statistics.mean(values)), "std": pytest.approx(statistics.stdev(values))}
    assert summary["weighted_f1"]["mean"] > 0.5  # the generated text carries the label
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "T--ET(tiny-bert), 3-fold on train: " + "  ".join(
        f"{title} {100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}%" for key, title in
        (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("weighted_f1", "weighted-F1"),
         ("macro_f1", "macro-F1")))
    first = summary["per_fold"][0]
    assert (f"fold 0 ({first['rows']} rows): accuracy {100 * first['accuracy']:.2f}%  weighted-F1 "
            f"{100 * first['weighted_f1']:.2f}%  macro-F1 {100 * first['macro_f1']:.2f}%") in printed


def test_tensorboard_log_holds_every_number_of_history_csv(meld_dir, tiny_bert, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", epochs=2, log="tensorboard",
                                    output_dir=str(tmp_path)))
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    with open(folder / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    names = [k for k in history[0] if k != "epoch"]
    assert sorted(events.Tags()["scalars"]) == sorted(names)
    for name in names:
        logged = [(e.step, e.value) for e in events.Scalars(name)]
        assert logged == [(int(row["epoch"]), pytest.approx(float(row[name]), rel=1e-6)) for row in history]


def test_tensorboard_log_without_the_package_is_refused_before_training(meld_dir, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), log="tensorboard", output_dir=str(tmp_path))
    with pytest.raises(RecognizeError, match=r"--log tensorboard: the tensorboard package is not installed"):
        train(config)
    assert not config.run_dir.exists()
