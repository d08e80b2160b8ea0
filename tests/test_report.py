"""`report` on hand-written checkpoint folders: the exact table (mean ± std over seeds, stage
lineage, filters, sorting, CSV), and folders that are not finished runs skipped with a
warning; an empty folder is a one-line error."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recognize import ExperimentConfig
from recognize.cli import app
from recognize.report import csv_table, find_runs, group_runs, markdown_table, other_settings, select_rows

SCORES = ("accuracy", "precision", "recall", "weighted_f1", "macro_f1")


def write_run(folder: Path, config: ExperimentConfig, test: dict[str, float], lineage: "list | None" = None,
              finished: bool = True) -> Path:
    """A checkpoint folder as `train` leaves it, as far as `report` reads it."""
    folder.mkdir(parents=True)
    record = {"experiment": config.to_dict(), "run_name": config.run_name, "lineage": lineage or []}
    (folder / "config.json").write_text(json.dumps(record))
    if finished:
        metrics = {"best_epoch": 1, "dev": dict(test), "test": dict(test)}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def scores(accuracy: float, weighted_f1: float) -> dict[str, float]:
    """Test scores with precision, recall and macro-F1 derived from the two given."""
    return {"accuracy": accuracy, "precision": accuracy - 0.01, "recall": accuracy, "weighted_f1": weighted_f1,
            "macro_f1": weighted_f1 - 0.2}


@pytest.fixture()
def checkpoints(tmp_path) -> Path:
    """Two seeds of MPNet full tuning, one run of its second stage, one T+A LMF run on
    sentiment, and three folders that are not finished runs."""
    root = tmp_path / "checkpoints"
    text = dict(modal="T", task="emotion", text_model="sentence-transformers/all-mpnet-base-v2", mode="full")
    speed_only = {1: {}, 2: {"cache": False, "compile": True, "workers": 2}}  # not part of the setting
    for seed, (acc, wf1) in {1: (0.60, 0.58), 2: (0.62, 0.59)}.items():
        config = ExperimentConfig(**text, **speed_only[seed], seed=seed, seed_folder=True, output_dir=str(root))
        write_run(config.run_dir, config, scores(acc, wf1))
    stage1 = {"folder": "checkpoints/T--ET(all-mpnet-base-v2)/seed-1", "run_name": "T--ET(all-mpnet-base-v2)",
              "mode": "full", "modal": "T", "lineage": []}
    second = ExperimentConfig(**{**text, "mode": "frozen"}, init_from=[stage1["folder"]], output_dir=str(root))
    write_run(second.run_dir, second, scores(0.6418, 0.6233), lineage=[stage1])
    fused = ExperimentConfig(modal="T+A", task="sentiment", audio_model="facebook/wav2vec2-base", output_dir=str(root / "fusion"))
    write_run(fused.run_dir, fused, scores(0.7, 0.69), lineage=[{**stage1, "run_name": "T--ST(all-mpnet-base-v2)"}])
    interrupted = ExperimentConfig(modal="A", audio_model="facebook/wav2vec2-base", output_dir=str(root))
    write_run(interrupted.run_dir, interrupted, {}, finished=False)
    (root / "notes").mkdir()
    (root / "notes" / "config.json").write_text('{"learning_rate": 3}')  # another tool's folder
    (root / "demo" / "tiny-bert").mkdir(parents=True)
    (root / "demo" / "tiny-bert" / "config.json").write_text('{"model_type": "bert", "hidden_size": 32}')  # a model
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text('{"experiment": ')  # killed mid-write (by something else)
    return root


EXPECTED = """\
| modality | backbones | fusion | task | training | n | accuracy | precision | recall | weighted-F1 | macro-F1 |
|---|---|---|---|---|---|---|---|---|---|---|
| T | all-mpnet-base-v2 |  | emotion | Full Tuning | 2 | 61.00 ± 1.41 | 60.00 ± 1.41 | 61.00 ± 1.41 | 58.50 ± 0.71 | 38.50 ± 0.71 |
| T | all-mpnet-base-v2 |  | emotion | Full Tuning -> Training Classification | 1 | 64.18 | 63.18 | 64.18 | 62.33 | 42.33 |
| T+A | all-mpnet-base-v2+wav2vec2-base | LMF | sentiment | Text-only Full Tuning -> Full Tuning | 1 | 70.00 | 69.00 | 70.00 | 69.00 | 49.00 |
"""


def test_report_prints_the_exact_table_and_skips_what_is_not_a_finished_run(checkpoints):
    result = CliRunner().invoke(app, ["report", str(checkpoints)])
    assert result.exit_code == 0, result.output
    table = result.stdout
    assert table == EXPECTED
    warnings = result.stderr
    assert "skipped" in warnings and "A--ET(wav2vec2-base)" in warnings and "has not finished" in warnings
    assert f"skipped {checkpoints / 'notes'}: config.json has no 'experiment' section" in warnings
    assert f"skipped {checkpoints / 'broken'}: config.json:" in warnings
    assert "tiny-bert" not in warnings  # a model folder beside the runs is no run, nor worth a warning


def test_report_skips_a_run_whose_metrics_are_not_an_object(checkpoints):
    config = ExperimentConfig(modal="T", text_model="bert-base-uncased", output_dir=str(checkpoints / "odd"))
    folder = write_run(config.run_dir, config, scores(0.5, 0.5))
    (folder / "metrics.json").write_text("[1]")

    result = CliRunner().invoke(app, ["report", str(checkpoints)])

    assert result.exit_code == 0, result.output
    assert result.stdout == EXPECTED
    assert f"warning: skipped {folder}: metrics.json is not a JSON object\n" in result.stderr


def test_report_counts_a_seed_copied_into_several_folders_once(checkpoints):
    seed_1 = checkpoints / "T--ET(all-mpnet-base-v2)" / "seed-1"
    copies = [checkpoints / "backup" / "seed-1", checkpoints / "copy" / "seed-1"]
    for copy in copies:
        shutil.copytree(seed_1, copy)

    result = CliRunner().invoke(app, ["report", str(checkpoints)])

    assert result.exit_code == 0, result.output
    assert result.stdout == EXPECTED  # n 2, as without the copies
    assert (f"warning: skipped {copies[0]}, {copies[1]}: seed 1 of this setting is already counted from {seed_1} "
            "(a seed counts once: its first folder in sorted order)\n") in result.stderr

    rerun = checkpoints / "0-rerun" / "seed-1"  # first in sorted order: its scores count, the others' do not
    shutil.copytree(seed_1, rerun)
    (rerun / "metrics.json").write_text(json.dumps({"test": scores(0.7, 0.68)}))
    warnings = []
    rows = group_runs(find_runs(checkpoints, warn=lambda line: None), warn=warnings.append)
    assert (rows[0].seeds, rows[0].scores["accuracy"]) == ([1, 2], [0.7, 0.62])
    assert warnings == [(f"skipped {seed_1}, {copies[0]}, {copies[1]}: seed 1 of this setting is already counted from "
                         f"{rerun} (a seed counts once: its first folder in sorted order)")]


def test_report_filters_sorts_writes_csv_and_a_file(checkpoints, tmp_path):
    rows = group_runs(find_runs(checkpoints, warn=lambda line: None))
    by_f1 = select_rows(rows, sort="weighted_f1")
    assert [r.setting["training"] for r in by_f1] == ["Text-only Full Tuning -> Full Tuning",
                                                      "Full Tuning -> Training Classification", "Full Tuning"]
    assert [r.setting["modality"] for r in select_rows(rows, modal="a+t")] == ["T+A"]
    assert [r.seeds for r in select_rows(rows, task="emotion")] == [[1, 2], [42]]

    output = tmp_path / "table.csv"
    result = CliRunner().invoke(app, ["report", str(checkpoints), "--format", "csv", "--label-type", "sentiment",
                                      "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_text() == (
        "modality,backbones,fusion,task,training,n,seeds,accuracy_mean,accuracy_std,precision_mean,precision_std,"
        "recall_mean,recall_std,weighted_f1_mean,weighted_f1_std,macro_f1_mean,macro_f1_std\n"
        "T+A,all-mpnet-base-v2+wav2vec2-base,LMF,sentiment,Text-only Full Tuning -> Full Tuning,1,42,"
        "70.00,,69.00,,70.00,,69.00,,49.00,\n")
    assert markdown_table(select_rows(rows, task="sentiment")).count("\n") == 3


@pytest.mark.parametrize("arguments, message", [
    ([], "no finished checkpoint folder with test scores found"),
    (["--format", "latex"], "--format: unknown value 'latex'; valid: markdown, csv"),
])
def test_report_errors_are_one_line(tmp_path, arguments, message):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty"), *arguments])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {message}" if message.startswith("--") else
                                                  f"error: {tmp_path / 'empty'}: {message}"]


def test_report_sort_by_an_unknown_column_is_refused(checkpoints):
    result = CliRunner().invoke(app, ["report", str(checkpoints), "--sort", "speed"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: --sort: unknown column 'speed'; valid: modality,")


def test_runs_on_other_csvs_are_another_setting_whatever_the_path_says(checkpoints):
    setting = checkpoints / "T--ET(all-mpnet-base-v2)"

    def set_data(folder: Path, data: str, fingerprint: str) -> None:
        record = json.loads((folder / "config.json").read_text())
        record["experiment"]["data"], record["data_fingerprint"] = data, fingerprint
        (folder / "config.json").write_text(json.dumps(record))

    set_data(setting / "seed-1", "/data/MELD", "a1b2")
    set_data(setting / "seed-2", "/elsewhere/MELD-copy", "a1b2")  # the same CSVs at another path: the same setting
    fold = checkpoints / "cv-dev-3" / "fold-0" / "T--ET(all-mpnet-base-v2)"
    shutil.copytree(setting / "seed-1", fold)
    set_data(fold, str(fold.parent / "data"), "f0f0")  # a fold's own CSVs, and seed 1 again

    warnings = []
    rows = group_runs(find_runs(checkpoints, warn=lambda line: None), warn=warnings.append)

    full_tuning = [row for row in rows if row.setting["training"] == "Full Tuning"]
    assert [row.seeds for row in full_tuning] == [[1, 2], [1]]  # the two seeds together, the fold alone
    assert warnings == []  # the fold is not a copy of seed 1
    assert [note for note in other_settings(select_rows(full_tuning))] == ["data data/MELD", "data fold-0/data"]


def test_rows_the_setting_columns_show_alike_name_what_tells_them_apart(tmp_path):
    text = dict(modal="T", task="emotion", text_model="sentence-transformers/all-mpnet-base-v2", mode="full")
    for context, (acc, wf1) in {0: (0.60, 0.58), 1: (0.64, 0.62)}.items():
        config = ExperimentConfig(**text, context=context, output_dir=str(tmp_path / f"context-{context}"))
        write_run(config.run_dir, config, scores(acc, wf1))
    explicit = ExperimentConfig(**text, lr=2e-5, output_dir=str(tmp_path / "explicit-lr"))  # --lr the mode's default
    write_run(explicit.run_dir, explicit, scores(0.60, 0.58))
    fused = ExperimentConfig(modal="T+A", audio_model="facebook/wav2vec2-base", output_dir=str(tmp_path / "fusion"))
    write_run(fused.run_dir, fused, scores(0.5, 0.5))

    result = CliRunner().invoke(app, ["report", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ("| modality | backbones | fusion | task | training | other settings | n | "
                                             "accuracy | precision | recall | weighted-F1 | macro-F1 |")
    assert [line.split(" | ")[5] for line in result.stdout.splitlines()[2:]] == ["--context 0", "--context 1", ""]
    assert "seed 42 of this setting is already counted" in result.stderr  # --lr 2e-5 is full tuning's default
    table = csv_table(select_rows(group_runs(find_runs(tmp_path, warn=lambda line: None), warn=lambda line: None)))
    assert table.splitlines()[0].startswith("modality,backbones,fusion,task,training,other settings,n,seeds,")
    assert table.splitlines()[1].startswith("T,all-mpnet-base-v2,,emotion,Full Tuning,--context 0,1,42,60.00,")


def test_runs_that_differ_in_lr_alone_are_told_apart_by_lr_alone(tmp_path):
    text = dict(modal="T", task="emotion", text_model="sentence-transformers/all-mpnet-base-v2", mode="full")
    for name, rates in {"default": {}, "faster": {"lr": 1e-4}, "head": {"lr": 1e-4, "head_lr": 1e-3}}.items():
        config = ExperimentConfig(**text, **rates, output_dir=str(tmp_path / name))
        write_run(config.run_dir, config, scores(0.6, 0.58))

    rows = select_rows(group_runs(find_runs(tmp_path, warn=lambda line: None), warn=lambda line: None))

    assert sorted(other_settings(rows)) == ["--lr 0.0001, --head-lr 0.001", "--lr 0.0001, --head-lr default",
                                            "--lr 2e-05, --head-lr default"]
    two = [row for row in rows if row.fields["head_lr"] is None]  # --head-lr not given: it follows --lr, told apart by it alone
    assert sorted(other_settings(two)) == ["--lr 0.0001", "--lr 2e-05"]


def test_runs_whose_automatic_precision_resolved_differently_are_other_settings(tmp_path):
    """`--precision auto` is bf16 on a GPU and fp32 ("no") on a CPU: config.json's
    resolved_precision keeps such runs apart; a run asked for fp32 (`no`) joins the CPU one,
    and a run written before the field was recorded keeps the value asked for."""
    text = dict(modal="T", task="emotion", text_model="sentence-transformers/all-mpnet-base-v2", mode="full")
    for name, seed, precision, resolved in [("gpu", 1, "auto", "bf16"), ("cpu", 1, "auto", "no"), ("cpu", 2, "no", "no"),
                                            ("old", 3, "auto", None)]:
        config = ExperimentConfig(**text, seed=seed, precision=precision, output_dir=str(tmp_path / f"{name}-{seed}"))
        folder = write_run(config.run_dir, config, scores(0.6 + seed / 100, 0.58))
        if resolved is not None:
            record = json.loads((folder / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**record, "resolved_precision": resolved}))

    rows = select_rows(group_runs(find_runs(tmp_path, warn=lambda line: None), warn=lambda line: None),
                       sort="accuracy")

    assert [(row.seeds, note) for row, note in zip(rows, other_settings(rows))] == [
        ([3], "--precision auto"), ([1, 2], "--precision no"), ([1], "--precision bf16")]


def write_ensemble(folder: Path, members: list[Path], test: dict[str, float]) -> None:
    """An ensemble's eval-test.json as `eval --ensemble` writes it (the keys `report` reads)."""
    folder.mkdir(parents=True)
    record = {"split": "test", "training": f"ensemble of {len(members)}", "members": [str(m) for m in members], **test}
    (folder / "eval-test.json").write_text(json.dumps(record))


def test_an_ensemble_of_the_seeds_is_a_row_of_one_model_after_its_setting(checkpoints):
    setting = checkpoints / "T--ET(all-mpnet-base-v2)"
    write_ensemble(setting / "ensemble", [setting / "seed-1", setting / "seed-2"], scores(0.63, 0.6))
    write_ensemble(checkpoints / "lost", [setting / "seed-1", checkpoints / "gone" / "seed-3"], scores(0.5, 0.5))

    result = CliRunner().invoke(app, ["report", str(checkpoints), "--label-type", "emotion"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2:5] == [
        "| T | all-mpnet-base-v2 |  | emotion | Full Tuning | 2 | 61.00 ± 1.41 | 60.00 ± 1.41 | 61.00 ± 1.41 | 58.50 ± 0.71 | 38.50 ± 0.71 |",
        "| T | all-mpnet-base-v2 |  | emotion | Full Tuning, ensemble of 2 | 1 | 63.00 | 62.00 | 63.00 | 60.00 | 40.00 |",
        "| T | all-mpnet-base-v2 |  | emotion | Full Tuning -> Training Classification | 1 | 64.18 | 63.18 | 64.18 | 62.33 | 42.33 |"]
    assert len(lines) == 5
    assert (f"warning: skipped ensemble {checkpoints / 'lost'}: its member {checkpoints / 'gone' / 'seed-3'} is not a "
            f"finished run under {checkpoints}") in " ".join(result.stderr.split())
    csv_rows = CliRunner().invoke(app, ["report", str(checkpoints), "--format", "csv", "--sort", "accuracy"]).stdout
    assert "T,all-mpnet-base-v2,,emotion,\"Full Tuning, ensemble of 2\",1,1 2,63.00,,62.00," in csv_rows


def test_an_ensemble_of_two_settings_joins_their_columns(checkpoints):
    mpnet = checkpoints / "T--ET(all-mpnet-base-v2)" / "seed-1"
    second = checkpoints / "T--EF(all-mpnet-base-v2)"
    write_ensemble(checkpoints / "mix", [mpnet, second], scores(0.65, 0.63))
    runs = find_runs(checkpoints, warn=lambda line: None)
    from recognize.report import ensemble_rows
    (row,) = ensemble_rows(checkpoints, runs)
    assert row.setting == {"modality": "T", "backbones": "all-mpnet-base-v2", "fusion": "", "task": "emotion",
                           "training": "Full Tuning / Full Tuning -> Training Classification, ensemble of 2"}
    assert (row.seeds, row.count, row.fields) == ([1, 42], 1, {})


def test_a_run_written_before_a_field_existed_is_the_setting_of_its_default(tmp_path):
    root = tmp_path / "checkpoints"
    for seed in (1, 2):
        config = ExperimentConfig(modal="T", text_model="bert-base-uncased", seed=seed, seed_folder=True, output_dir=str(root))
        folder = write_run(config.run_dir, config, scores(0.6, 0.58))
        if seed == 1:  # as an earlier version wrote it: no focal_gamma
            record = json.loads((folder / "config.json").read_text())
            del record["experiment"]["focal_gamma"]
            (folder / "config.json").write_text(json.dumps(record))
    (row,) = group_runs(find_runs(root, warn=lambda line: None))
    assert row.seeds == [1, 2] and other_settings([row]) == [""]


def test_each_ensemble_follows_its_own_setting_where_settings_share_a_training_column(tmp_path):
    root = tmp_path / "checkpoints"
    for lr, accuracy in ((3e-5, 0.60), (5e-5, 0.62)):
        for seed in (1, 2):
            config = ExperimentConfig(modal="T", text_model="bert-base-uncased", lr=lr, seed=seed, seed_folder=True,
                                      output_dir=str(root / f"lr{lr:g}"))
            write_run(config.run_dir, config, scores(accuracy, accuracy - 0.02))
        setting = root / f"lr{lr:g}" / "T--ET(bert-base-uncased)"
        write_ensemble(setting / "ensemble", [setting / "seed-1", setting / "seed-2"], scores(accuracy + 0.01, accuracy))

    result = CliRunner().invoke(app, ["report", str(root)])

    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in result.stdout.splitlines()[2:]]
    assert [row[4:8] for row in rows] == [  # training, other settings, n, accuracy
        ["Full Tuning", "--lr 3e-05", "2", "60.00 ± 0.00"], ["Full Tuning, ensemble of 2", "--lr 3e-05", "1", "61.00"],
        ["Full Tuning", "--lr 5e-05", "2", "62.00 ± 0.00"], ["Full Tuning, ensemble of 2", "--lr 5e-05", "1", "63.00"]]
