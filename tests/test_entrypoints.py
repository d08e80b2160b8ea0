"""The ways in: the console script's module forms, the offline demo, the recipes in
training/ and the script in evaluation/, each run for real on tiny data."""

import csv
import importlib.util
import json
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recognize import ExperimentConfig, engine, train
from recognize.cli import app
from recognize.dataset.prepare import prepare
from recognize.dataset.synthetic import write_synthetic_meld_raw
from recognize.errors import RecognizeError
from recognize.lineage import record_stages
from recognize.scripting import run_script, score_line
from recognize.tiny import write_tiny_vivit, write_tiny_wav2vec2

from helpers import ROOT, load_script



@pytest.mark.parametrize("command", [[sys.executable, "-m", "recognize"], [sys.executable, "recognize/cli.py"]])
def test_module_and_script_forms_show_the_commands(command):
    result = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("train", "eval", "demo"))


def test_help_in_80_columns_shows_long_defaults_whole():
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())
    assert "…" not in help_text and "$EMOTION_RECOGNIZE_CACHE" in help_text
    assert "google/vivit-b-16x2-kinetics400" in help_text and "sentence-transformers/all- mpnet-base-v2" in help_text


def test_demo_trains_and_evaluates_well_above_chance(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path), "--epochs", "4"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "checkpoints" / "T--ET(tiny-bert)"
    evaluation = json.loads((folder / "eval-test.json").read_text())
    assert evaluation["weighted_f1"] > 0.6  # 7 classes; the generator's label noise caps it near 0.87
    assert "weighted" in result.output and "macro-F1" in result.output
    next_steps = [line for line in result.stdout.splitlines() if line.startswith("  emotion-recognize ")]
    assert next_steps[0] == f"  emotion-recognize report {tmp_path}"
    for command in (shlex.split(line)[1:] for line in next_steps):
        assert CliRunner().invoke(app, command).exit_code == 0, command


def test_cli_train_then_eval_round_trip(meld_dir, tiny_bert, tmp_path):
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(meld_dir), "--modal", "T", "--label-type", "sentiment", "--mode", "F",
                                  "--text-model", str(tiny_bert), "--epochs", "2", "--batch-size", "32",
                                  "--seed", "3", "--output-dir", str(tmp_path)])
    assert trained.exit_code == 0, trained.output
    folder = tmp_path / "T--SF(tiny-bert)"
    config = json.loads((folder / "config.json").read_text())["experiment"]
    assert (config["task"], config["mode"], config["epochs"], config["seed"], config["pooling"]) == ("sentiment", "frozen", 2, 3, "cls")
    evaluated = runner.invoke(app, ["eval", str(folder), "--split", "dev"])
    assert evaluated.exit_code == 0, evaluated.output
    recorded = json.loads((folder / "metrics.json").read_text())["dev"]
    assert json.loads((folder / "eval-dev.json").read_text())["weighted_f1"] == pytest.approx(recorded["weighted_f1"], abs=1e-9)


KD = "KD from T--ET(tiny-bert), weight 0.5, tau 2"
RECIPES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "training").glob("*.py"))
RESEARCH_ROWS = {  # recipe -> the training column of the research table's rows it reproduces, by checkpoint folder
    "training/text_finetune.py": {"T--ET(tiny-bert)": "Full Tuning"},
    "training/text_classifier_only.py": {"T--EF(tiny-bert)": "Training Classification"},
    "training/text_mpnet_two_stage.py": {
        "text_mpnet_two_stage/T--ET(tiny-bert)": "Full Tuning",
        "text_mpnet_two_stage/T--EF(tiny-bert)": "Full Tuning -> Training Classification"},
    "training/text_audio_lmf.py": {
        "text_audio_lmf/T--ET(tiny-bert)": "Full Tuning",
        "text_audio_lmf/after-text-only/T+A--EF--LMF(tiny-bert+tiny-wav2vec2)": "Text-only Full Tuning -> Training Classification",
        "text_audio_lmf/T+A--ET--LMF(tiny-bert+tiny-wav2vec2)": "Text-only Full Tuning -> Full Tuning",
        "text_audio_lmf/T+A--EF--LMF(tiny-bert+tiny-wav2vec2)": "Text-only Full Tuning -> Full Tuning -> Training Classification"},
    "training/video_vivit_classifier.py": {"V--EF(tiny-vivit)": "Training Classification"},
    "training/distill_students.py": {
        "distill_students/T--ET(tiny-bert)": "Full Tuning",
        "distill_students/A--ET(tiny-wav2vec2)": f"Full Tuning ({KD})",
        "distill_students/V--EL(tiny-vivit)": f"LoRA ({KD})",
        "distill_students/T+A+V--EF--ATTENTION(tiny-bert+tiny-wav2vec2+tiny-vivit)":
            f"(Text-only Full Tuning + Audio-only Full Tuning ({KD}) + Video-only LoRA ({KD})) -> Training Classification"},
}


@pytest.fixture(scope="module")
def recipe_inputs(tmp_path_factory, tiny_bert) -> dict:
    """A small prepared MELD folder with audio and video, and a tiny model for each encoder flag."""
    tmp = tmp_path_factory.mktemp("recipes")
    raw = write_synthetic_meld_raw(tmp / "raw", seed=1, dialogues={"train": 4, "dev": 2, "test": 2}, broken=False)
    prepare(raw, tmp / "MELD", workers=1)
    models = {"--text-model": tiny_bert, "--audio-model": write_tiny_wav2vec2(tmp / "tiny-wav2vec2"),
              "--video-model": write_tiny_vivit(tmp / "tiny-vivit")}
    return {"data": tmp / "MELD", "models": models}


def test_every_recipe_is_listed_with_the_research_rows_it_reproduces():
    assert RECIPES == sorted(RESEARCH_ROWS)


def test_no_two_recipes_write_the_same_checkpoint_folder():  # each run end to end below writes exactly its rows
    folders = [folder for rows in RESEARCH_ROWS.values() for folder in rows]
    assert len(folders) == len(set(folders))


def test_text_recipes_run_one_after_another_into_one_folder_and_again_with_overwrite(recipe_inputs, tmp_path):
    arguments = [str(recipe_inputs["data"]), "--text-model", str(recipe_inputs["models"]["--text-model"]), "--epochs", "1",
                 "--batch-size", "8", "--output-dir", str(tmp_path)]
    recipes = ["training/text_finetune.py", "training/text_classifier_only.py", "training/text_mpnet_two_stage.py"]
    for recipe in recipes:
        load_script(recipe).main(arguments)
    finished = sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("metrics.json"))
    assert finished == sorted(folder for recipe in recipes for folder in RESEARCH_ROWS[recipe])

    two_stage = load_script("training/text_mpnet_two_stage.py")
    stage1 = tmp_path / "text_mpnet_two_stage" / "T--ET(tiny-bert)"
    with pytest.raises(RecognizeError, match=r"checkpoint folder exists, holding a finished run; pass --overwrite"):
        two_stage.main(arguments)
    before = (stage1 / "metrics.json").stat().st_mtime_ns
    two_stage.main([*arguments, "--overwrite"])
    assert (stage1 / "metrics.json").stat().st_mtime_ns > before  # trained again, not left as it was


def test_a_recipe_interrupted_in_its_second_stage_resumes_there(recipe_inputs, tmp_path, monkeypatch):
    """--resume keeps stage 1 (finished) as it is and continues stage 2 from its last epoch."""
    arguments = [str(recipe_inputs["data"]), "--text-model", str(recipe_inputs["models"]["--text-model"]), "--epochs", "2",
                 "--batch-size", "8", "--output-dir", str(tmp_path)]
    two_stage = load_script("training/text_mpnet_two_stage.py")
    save_state = engine.save_state

    def die_in_stage_two(run_dir, state, *args):
        save_state(run_dir, state, *args)
        if run_dir.name.startswith("T--EF"):
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(engine, "save_state", die_in_stage_two)
        with pytest.raises(KeyboardInterrupt):
            two_stage.main(arguments)
    stage1, stage2 = (tmp_path / "text_mpnet_two_stage" / name for name in ("T--ET(tiny-bert)", "T--EF(tiny-bert)"))
    kept = (stage1 / "model.safetensors").stat().st_mtime_ns
    assert (stage2 / "state").is_dir() and not (stage2 / "metrics.json").exists()

    two_stage.main([*arguments, "--resume"])

    assert (stage1 / "model.safetensors").stat().st_mtime_ns == kept
    assert len(json.loads((stage2 / "metrics.json").read_text())["dev"]) and not (stage2 / "state").exists()
    assert [row["epoch"] for row in csv.DictReader(open(stage2 / "history.csv"))] == ["1", "2"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_runs_end_to_end_on_local_folders(recipe, recipe_inputs, tmp_path, capsys):
    script = load_script(recipe)
    source = (ROOT / recipe).read_text()
    models = [part for flag, folder in recipe_inputs["models"].items()
              if f"{flag[2:].replace('-', '_')}=" in source for part in (flag, str(folder))]
    script.main([str(recipe_inputs["data"]), *models, "--epochs", "1", "--batch-size", "8", "--output-dir", str(tmp_path)])

    printed = capsys.readouterr().out.splitlines()
    finished = sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("metrics.json"))
    assert finished == sorted(RESEARCH_ROWS[recipe])
    assert sum(": test accuracy " in line for line in printed) == sum((tmp_path / f / "eval-test.json").is_file() for f in finished)
    for folder, training in RESEARCH_ROWS[recipe].items():
        evaluation = tmp_path / folder / "eval-test.json"
        if evaluation.is_file():  # the recipe's final stages are evaluated on test, and their scores printed in percent
            scores = json.loads(evaluation.read_text())
            assert scores["training"] == training
            assert f"{tmp_path / folder}: test {score_line(scores)}" in printed
        assert record_stages(json.loads((tmp_path / folder / "config.json").read_text())) == training


def test_evaluate_all_prints_each_finished_run_and_names_the_failures(meld_dir, tiny_bert, tmp_path, capsys):
    good = train(ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", epochs=1,
                                  output_dir=str(tmp_path / "a")))
    broken, unfinished = tmp_path / "T--ET(x)", tmp_path / "T--EF(x)"
    for folder in (broken, unfinished):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    (broken / "metrics.json").write_text("{}")
    capsys.readouterr()
    load_script("evaluation/evaluate_all.py").main([str(tmp_path)])
    captured = capsys.readouterr()
    metrics = json.loads((good / "eval-test.json").read_text())
    assert captured.out == (f"a/T--EF(tiny-bert): accuracy {100 * metrics['accuracy']:.2f}%  "
                            f"weighted-F1 {100 * metrics['weighted_f1']:.2f}%  macro-F1 {100 * metrics['macro_f1']:.2f}%\n")
    skipped = [line for line in captured.err.splitlines() if "skipped" in line]  # beside transformers' progress bars
    assert len(skipped) == 1 and skipped[0].startswith("T--ET(x): skipped (")  # the unfinished one is passed over


def test_evaluate_all_fails_when_no_run_could_be_evaluated(tmp_path, capsys, monkeypatch):
    broken = tmp_path / "T--ET(x)"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "metrics.json").write_text("{}")
    assert run_as_main("evaluation/evaluate_all.py", str(tmp_path), "--split", "dev", monkeypatch=monkeypatch) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("T--ET(x): skipped (")
    assert lines[1:] == [f"error: {tmp_path}: no finished run could be evaluated on dev"]

SCRIPTS = sorted(path.relative_to(ROOT).as_posix() for folder in ("training", "evaluation") for path in (ROOT / folder).glob("*.py"))
MISSING_INPUT = {"evaluation/evaluate_all.py": "{missing}: no such folder",
                 "evaluation/cross_validation.py": "{missing}: data folder not found (expected a MELD folder with dev_sent_emo.csv)"}


def run_as_main(script: str, *arguments: str, monkeypatch) -> int:
    """Run `script` as `python script arguments...` does, in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", [script, *arguments])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return ended.value.code


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_ends_on_a_missing_data_folder_with_one_line(script, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "missing"
    expected = MISSING_INPUT.get(script, "{missing}: data folder not found (expected a MELD folder with train_sent_emo.csv)")
    assert run_as_main(script, str(missing), monkeypatch=monkeypatch) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {expected.format(missing=missing)}\n"
    assert not list(tmp_path.iterdir())  # nothing written


def test_cross_validation_script_refuses_two_folds_in_one_line(meld_dir, tmp_path, capsys, monkeypatch):
    script = "evaluation/cross_validation.py"
    assert run_as_main(script, str(meld_dir), "--folds", "2", "--output-dir", str(tmp_path), monkeypatch=monkeypatch) == 1
    assert capsys.readouterr().err == ("error: --folds: cross-validation needs at least 3 (a fold tests, the next picks "
                                       "the best epoch, the rest train) and at most the split's 60 dialogues, got 2\n")


def test_a_recipe_process_prints_no_traceback_on_bad_input(tmp_path):
    missing = tmp_path / "missing"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, whatever is installed
    result = subprocess.run([sys.executable, "training/text_finetune.py", str(missing)], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {missing}: data folder not found (expected a MELD folder with train_sent_emo.csv)\n"


def test_score_line_gives_percent_with_the_tables_names():
    scores = {"accuracy": 0.63144, "weighted_f1": 0.0289, "macro_f1": 1.0, "precision": 0.5}
    assert score_line(scores) == "accuracy 63.14%  weighted-F1 2.89%  macro-F1 100.00%"


def test_run_script_passes_the_arguments_and_lets_other_errors_through(capsys):
    seen = []
    run_script(seen.append, ["a", "--b"])
    assert seen == [["a", "--b"]]

    def fail(argv: list[str]) -> None:
        raise RecognizeError(f"{argv[0]}: broken\nsecond line")

    with pytest.raises(SystemExit) as ended:
        run_script(fail, ["data.csv"])
    assert (ended.value.code, capsys.readouterr().err) == (1, "error: data.csv: broken\n")
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_script(lambda argv: 1 / 0, [])


def test_a_recipe_copied_under_a_new_name_writes_its_stages_to_a_folder_of_that_name(tmp_path):
    copy = tmp_path / "my_two_stage.py"
    copy.write_text((ROOT / "training" / "text_mpnet_two_stage.py").read_text())
    spec = importlib.util.spec_from_file_location(copy.stem, copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = []

    def first_stage_only(config: ExperimentConfig, **existing: bool) -> Path:
        written.append(config.output_dir)
        raise RecognizeError("stop after the first stage")

    module.train = first_stage_only
    with pytest.raises(RecognizeError, match="stop after the first stage"):
        module.main(["datasets/MELD", "--output-dir", str(tmp_path / "runs")])
    assert written == [str(tmp_path / "runs" / "my_two_stage")]  # not text_mpnet_two_stage/: the original's stages


@pytest.mark.parametrize("script, lines", [
    ("training/text_finetune.py", ["samples per optimiser step (default: 32)", "random seed (default: 42)",
                                   "folder the runs go under (default: checkpoints)", "task (default: emotion)"]),
    ("evaluation/cross_validation.py", ["folds, by dialogue (default: 10)", "training mode (default: frozen)"]),
    ("evaluation/evaluate_all.py", ["split to evaluate on (default: test)"]),
])
def test_script_help_shows_each_options_default(script, lines, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        load_script(script).main(["--help"])
    shown = capsys.readouterr().out
    assert all(line in shown for line in lines), shown
    assert "(default: None)" not in shown and "(default: False)" not in shown


def test_run_script_silences_the_model_loading_progress_bars():
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    try:
        run_script(lambda argv: None, [])
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
