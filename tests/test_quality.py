"""benchmarks/quality.py on generated MELD data and a tiny BERT, with 1-epoch recipes: its
lines against the runs' metrics.json, its commands against what `emotion-recognize train`
parses them into, collecting finished seeds instead of training them again, and `report`."""

import json
import shlex
import statistics
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import recognize.run
from helpers import ROOT, load_script
from recognize.checkpoint import read_json
from recognize.cli import app
from recognize.errors import RecognizeError

SEED_KEYS = ["benchmark", "recipe", "stage", "backbone", "task", "seed", "dev_weighted_f1", "test_accuracy",
             "test_weighted_f1", "epochs_run", "best_epoch", "train_seconds", "collected", "machine", "command"]
SUMMARY_KEYS = ["benchmark", "recipe", "stage", "summary", "backbone", "task", "seeds", "n", "test_accuracy_mean",
                "test_accuracy_std", "test_weighted_f1_mean", "test_weighted_f1_std", "machine", "command"]
BASELINE = "T--ET(tiny-bert)"
TRAIN_SEEDS = recognize.run.train_seeds


@pytest.fixture(scope="module")
def quality():
    """benchmarks/quality.py as a module (its imports of jsonl and stages from benchmarks/)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield load_script("benchmarks/quality.py")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def run_quality(quality, capsys, monkeypatch, *arguments) -> tuple[list[dict], list[dict]]:
    """quality.main(arguments); its JSON lines, and the config dicts train_seeds was given (before training)."""
    given = []

    def recording(config, seeds, **kwargs):
        given.append(config.to_dict())
        return TRAIN_SEEDS(config, seeds, **kwargs)

    monkeypatch.setattr(quality, "train_seeds", recording)
    capsys.readouterr()
    quality.main([str(a) for a in arguments])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()], given


def parsed_command(command: str, monkeypatch) -> tuple[dict, list[int], bool]:
    """What `emotion-recognize train` makes of `command`: the config and seeds it passes to
    train_seeds (patched: nothing trains), and its resume."""
    words = shlex.split(command)
    assert words[:2] == ["emotion-recognize", "train"]
    seen = {}

    def instead(config, seeds, overwrite=False, resume=False):
        seen.update(config=config.to_dict(), seeds=seeds, resume=resume)
        return config.setting_dir

    monkeypatch.setattr(recognize.run, "train_seeds", instead)
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output
    return seen["config"], seen["seeds"], seen["resume"]


def file_times(folder: Path) -> dict[str, int]:
    """Every file of the seed folders under `folder` and its modification time in nanoseconds
    (aggregate.json beside them is written again by every `train --seeds`)."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")
            if path.is_file() and path.name != "aggregate.json"}


def test_baseline_lines_match_the_runs_and_a_second_run_collects_them(quality, meld_dir, tiny_bert, tmp_path, capsys,
                                                                     monkeypatch):
    out, output = tmp_path / "runs", tmp_path / "quality.jsonl"
    arguments = [meld_dir, "--recipe", "baseline", "--text-model", tiny_bert, "--seeds", "1,2", "--epochs", "1",
                 "--output-dir", out, "--output", output]
    lines, given = run_quality(quality, capsys, monkeypatch, *arguments)
    assert [list(line) for line in lines] == [SEED_KEYS, SEED_KEYS, SUMMARY_KEYS]
    assert output.read_text() == "".join(json.dumps(line) + "\n" for line in lines)
    metrics = {seed: read_json(out / BASELINE / f"seed-{seed}" / "metrics.json") for seed in (1, 2)}
    for line, seed in zip(lines, (1, 2)):
        run = metrics[seed]
        assert {k: line[k] for k in SEED_KEYS[:-2]} == {
            "benchmark": "quality", "recipe": "baseline", "stage": "Full Tuning", "backbone": "tiny-bert", "task": "emotion",
            "seed": seed, "dev_weighted_f1": round(100 * run["dev"]["weighted_f1"], 2),
            "test_accuracy": round(100 * run["test"]["accuracy"], 2),
            "test_weighted_f1": round(100 * run["test"]["weighted_f1"], 2), "epochs_run": 1, "best_epoch": 1,
            "train_seconds": round(run["train_seconds"], 1), "collected": False}
    summary = lines[2]
    assert (summary["summary"], summary["seeds"], summary["n"]) == (True, [1, 2], 2)
    for score in ("accuracy", "weighted_f1"):
        values = [100 * metrics[seed]["test"][score] for seed in (1, 2)]
        assert summary[f"test_{score}_mean"] == round(statistics.mean(values), 2)
        assert summary[f"test_{score}_std"] == round(statistics.stdev(values), 2)
        from_lines = [line[f"test_{score}"] for line in lines[:2]]  # the lines' rounded scores agree to within rounding
        assert abs(summary[f"test_{score}_mean"] - statistics.mean(from_lines)) <= 0.01
        assert abs(summary[f"test_{score}_std"] - statistics.stdev(from_lines)) <= 0.02

    command = summary["command"]
    assert all(line["command"] == command for line in lines)
    assert command.endswith(f" --output-dir {out} --seeds 1,2 --resume")
    config, seeds, resume = parsed_command(command, monkeypatch)
    assert (config, seeds, resume) == (given[0], [1, 2], True)

    before = file_times(out)
    again, given_again = run_quality(quality, capsys, monkeypatch, *arguments)
    assert file_times(out) == before  # nothing trained, nothing rewritten
    assert again == [{**line, "collected": True} for line in lines[:2]] + [lines[2]]
    assert given_again == given
    assert output.read_text().splitlines() == [json.dumps(line) for line in lines + again]


def test_two_stage_collects_its_first_stage_and_report_tells_the_stages_apart(quality, meld_dir, tiny_bert, tmp_path,
                                                                               capsys, monkeypatch):
    out = tmp_path / "runs"
    common = [meld_dir, "--text-model", tiny_bert, "--seeds", "1,2", "--epochs", "1", "--output-dir", out]
    baseline, _ = run_quality(quality, capsys, monkeypatch, *common, "--recipe", "baseline")
    first_times = file_times(out / BASELINE)
    lines, given = run_quality(quality, capsys, monkeypatch, *common, "--recipe", "two_stage")
    assert file_times(out / BASELINE) == first_times
    assert lines[:3] == [{**line, "recipe": "two_stage", **({"collected": True} if "seed" in line else {})}
                         for line in baseline]
    second = lines[3:]
    assert [line["stage"] for line in second] == ["Full Tuning -> Training Classification"] * 3
    assert [line.get("collected") for line in second] == [False, False, None]
    for seed in (1, 2):  # each seed's classifier stage starts from the same seed's full tuning
        record = read_json(out / "stage-2" / "T--EF(tiny-bert)" / f"seed-{seed}" / "config.json")
        assert [entry["folder"] for entry in record["lineage"]] == [str(out / BASELINE / f"seed-{seed}")]
    config, seeds, resume = parsed_command(second[0]["command"], monkeypatch)
    assert config == given[1] and config["mode"] == "frozen" and config["lr"] == 1e-3
    assert config["init_from"] == [str(out / BASELINE)]

    table = CliRunner().invoke(app, ["report", str(out)])
    assert table.exit_code == 0, table.output
    rows = [[cell.strip() for cell in row.split("|")[1:-1]] for row in table.stdout.splitlines()[2:]]
    header = [cell.strip() for cell in table.stdout.splitlines()[0].split("|")[1:-1]]
    shown = {row[header.index("training")]: (row[header.index("n")], row[header.index("weighted-F1")]) for row in rows}
    summaries = {line["stage"]: line for line in lines if line.get("summary")}
    assert shown == {stage: ("2", f"{s['test_weighted_f1_mean']:.2f} ± {s['test_weighted_f1_std']:.2f}")
                     for stage, s in summaries.items()}


def test_a_finished_seed_of_other_settings_is_an_error_not_retrained(quality, meld_dir, tiny_bert, tmp_path, capsys,
                                                                      monkeypatch):
    out, output = tmp_path / "runs", tmp_path / "quality.jsonl"
    common = [meld_dir, "--recipe", "baseline", "--text-model", tiny_bert, "--seeds", "1", "--output-dir", out,
              "--output", output]
    run_quality(quality, capsys, monkeypatch, *common, "--epochs", "1")
    before, recorded = file_times(out), output.read_text()
    with pytest.raises(RecognizeError, match=r"--resume needs the earlier run's settings; these differ: --epochs 1 -> 2"):
        run_quality(quality, capsys, monkeypatch, *common, "--epochs", "2")
    assert file_times(out) == before and output.read_text() == recorded


def test_ensemble_line_scores_the_seeds_mean_probabilities(quality, meld_dir, tiny_bert, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    common = [meld_dir, "--recipe", "baseline", "--text-model", tiny_bert, "--epochs", "1", "--output-dir", out]
    lines, _ = run_quality(quality, capsys, monkeypatch, *common, "--seeds", "1,2", "--ensemble")
    assert [("seed" in line, line.get("summary"), line.get("ensemble")) for line in lines] == [
        (True, None, None), (True, None, None), (False, True, None), (False, None, True)]
    ensemble = read_json(out / BASELINE / "ensemble" / "eval-test.json")
    assert ensemble["members"] == [str(out / BASELINE / f"seed-{s}") for s in (1, 2)]
    assert {k: lines[-1][k] for k in ("recipe", "stage", "seeds", "n", "test_accuracy", "test_weighted_f1")} == {
        "recipe": "baseline", "stage": "Full Tuning", "seeds": [1, 2], "n": 2,
        "test_accuracy": round(100 * ensemble["accuracy"], 2), "test_weighted_f1": round(100 * ensemble["weighted_f1"], 2)}
    assert lines[-1]["command"] == f"emotion-recognize eval '{out / BASELINE}' --ensemble"
    with pytest.raises(RecognizeError, match=r"--ensemble: needs two seeds or more, got --seeds 1"):
        run_quality(quality, capsys, monkeypatch, *common, "--seeds", "1", "--ensemble")


def test_two_stage_last_starts_each_classifier_from_its_seeds_last_epoch(quality, meld_dir, tiny_bert, tmp_path, capsys,
                                                                         monkeypatch):
    out = tmp_path / "runs"
    lines, given = run_quality(quality, capsys, monkeypatch, meld_dir, "--recipe", "two_stage_last", "--text-model", tiny_bert,
                               "--seeds", "1", "--epochs", "2", "--output-dir", out)
    assert [line["stage"] for line in lines] == ["Full Tuning"] * 2 + ["Full Tuning (last epoch) -> Training Classification"] * 2
    first = out / BASELINE / "seed-1"
    assert (first / "last.safetensors").is_file()
    record = read_json(out / "stage-2" / "T--EF(tiny-bert)" / "seed-1" / "config.json")
    assert [(entry["folder"], entry["epoch"]) for entry in record["lineage"]] == [(str(first), "last")]
    first_config, _, _ = parsed_command(lines[0]["command"], monkeypatch)
    second_config, _, _ = parsed_command(lines[2]["command"], monkeypatch)
    assert (first_config, second_config) == tuple(given)
    assert (first_config["keep_last"], second_config["keep_last"], second_config["init_epoch"]) == (True, False, "last")


def test_smooth_two_stage_resets_layer_decay_for_its_classifier_and_keeps_label_smoothing(quality, meld_dir, tiny_bert,
                                                                                        tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    common = [meld_dir, "--text-model", tiny_bert, "--seeds", "1", "--epochs", "1", "--output-dir", out]
    first_lines, _ = run_quality(quality, capsys, monkeypatch, *common, "--recipe", "smooth_decay")
    lines, given = run_quality(quality, capsys, monkeypatch, *common, "--recipe", "smooth_two_stage")
    assert lines[:2] == [{**line, "recipe": "smooth_two_stage", **({"collected": True} if "seed" in line else {})}
                         for line in first_lines]
    assert [line["stage"] for line in lines[2:]] == ["Full Tuning -> Training Classification"] * 2
    assert "--layer-decay 0.8" in lines[0]["command"] and "--layer-decay" not in lines[2]["command"]
    second_config, _, _ = parsed_command(lines[2]["command"], monkeypatch)
    assert second_config == given[-1]
    assert {key: second_config[key] for key in ("mode", "lr", "layer_decay", "label_smoothing", "init_from")} == {
        "mode": "frozen", "lr": 1e-3, "layer_decay": 1.0, "label_smoothing": 0.1, "init_from": [str(out / BASELINE)]}


def test_decay_distill_learns_from_the_teacher_it_is_given_and_needs_one(quality, meld_dir, tiny_bert, tmp_path, capsys,
                                                                         monkeypatch):
    out = tmp_path / "runs"
    common = [meld_dir, "--text-model", tiny_bert, "--seeds", "1", "--epochs", "1", "--output-dir", out]
    run_quality(quality, capsys, monkeypatch, *common, "--seeds", "1,2", "--recipe", "baseline")  # the last --seeds counts
    teacher = out / BASELINE / "seed-1"
    with pytest.raises(RecognizeError, match=r"^--teacher: this recipe distils a trained checkpoint; name its folder$"):
        run_quality(quality, capsys, monkeypatch, *common, "--recipe", "decay_distill")
    with pytest.raises(RecognizeError, match=r"^--teacher: only for a distilled recipe \(decay_distill\)$"):
        run_quality(quality, capsys, monkeypatch, *common, "--recipe", "smooth_decay", "--teacher", teacher)
    with pytest.raises(RecognizeError, match=r"^--teacher-ensemble: only with --teacher$"):
        run_quality(quality, capsys, monkeypatch, *common, "--recipe", "decay_distill", "--teacher-ensemble")

    student_dir = tmp_path / "students"
    lines, given = run_quality(quality, capsys, monkeypatch, meld_dir, "--text-model", tiny_bert, "--seeds", "1",
                               "--epochs", "1", "--output-dir", student_dir, "--recipe", "decay_distill", "--teacher", teacher)
    assert [line["stage"] for line in lines] == [f"Full Tuning (KD from {BASELINE}, weight 0.5, tau 2)"] * 2
    config, _, _ = parsed_command(lines[0]["command"], monkeypatch)
    assert config == given[0]
    assert {key: config[key] for key in ("teacher", "distill", "distill_weight", "temperature", "label_smoothing",
                                         "layer_decay", "lr")} == {
        "teacher": str(teacher), "distill": "kd", "distill_weight": 0.5, "temperature": 2.0, "label_smoothing": 0.0,
        "layer_decay": 0.8, "lr": 1e-4}
    record = read_json(student_dir / BASELINE / "seed-1" / "config.json")["distillation"]
    assert (record["teacher"], record["loss"], record["weight"], record["temperature"]) == (str(teacher), "kd", 0.5, 2.0)

    lines, given = run_quality(quality, capsys, monkeypatch, meld_dir, "--text-model", tiny_bert, "--seeds", "1",
                               "--epochs", "1", "--output-dir", tmp_path / "ensemble-students", "--recipe", "decay_distill",
                               "--teacher", out / BASELINE, "--teacher-ensemble")
    assert lines[0]["stage"] == f"Full Tuning (KD from the 2-seed ensemble of {BASELINE}, weight 0.5, tau 2)"
    config, _, _ = parsed_command(lines[0]["command"], monkeypatch)
    assert config == given[0] and (config["teacher"], config["teacher_ensemble"]) == (str(out / BASELINE), True)


RECIPE_NAMES = ["baseline", "two_stage", "two_stage_last", "future3", "smooth_decay", "smooth_two_stage", "smooth_long",
                "smooth_future3", "smooth_ema", "decay_distill", "focal"]


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_every_recipe_stage_command_is_what_train_parses_into_that_stage(quality, name, meld_dir, tiny_bert, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr("recognize.cli._print_aggregate", lambda path: None)  # nothing trains, so no aggregate.json
    teacher = str(tmp_path / "teacher") if quality.RECIPES[name].distilled else ""  # nothing trains: never read
    stages = quality.stage_configs(quality.RECIPES[name], str(meld_dir), tiny_bert, "emotion", str(tmp_path / name), None,
                                   teacher)
    assert len(stages) == len(quality.RECIPES[name].stages)
    for config, shown in stages:
        parsed, seeds, resume = parsed_command(quality.train_command(config, shown, [1, 2, 3]), monkeypatch)
        assert (parsed, seeds, resume) == (config.to_dict(), [1, 2, 3], True)


def test_the_recipe_list_in_this_test_is_every_recipe(quality):
    assert sorted(quality.RECIPES) == sorted(RECIPE_NAMES)
