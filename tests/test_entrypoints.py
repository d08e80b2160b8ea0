"""The ways in: the console script's module forms, the offline demo, the recipes in
training/ and the script in evaluation/, each run for real on tiny data."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recognize.cli import app

ROOT = Path(__file__).resolve().parent.parent


def load_script(relative: str):
    """Import a script file (training/..., evaluation/...) as a module."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("command", [[sys.executable, "-m", "recognize"], [sys.executable, "recognize/cli.py"]])
def test_module_and_script_forms_show_the_commands(command):
    result = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("train", "eval", "demo"))


def test_demo_trains_and_evaluates_well_above_chance(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path), "--epochs", "4"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "checkpoints" / "T--ET(tiny-bert)"
    evaluation = json.loads((folder / "eval-test.json").read_text())
    assert evaluation["weighted_f1"] > 0.6  # 7 classes; the generator's label noise caps it near 0.87
    assert "weighted" in result.output and "macro-F1" in result.output


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


def test_recipes_run_end_to_end_on_local_folders(meld_dir, tiny_bert, tmp_path, capsys):
    common = [str(meld_dir), "--text-model", str(tiny_bert), "--epochs", "1", "--output-dir", str(tmp_path)]
    load_script("training/text_finetune.py").main(common)
    assert (tmp_path / "T--ET(tiny-bert)" / "metrics.json").is_file()
    load_script("training/text_mpnet_two_stage.py").main([*common, "--label-type", "sentiment"])
    record = json.loads((tmp_path / "T--SF(tiny-bert)" / "config.json").read_text())
    assert [stage["run_name"] for stage in record["lineage"]] == ["T--ST(tiny-bert)"]


def test_evaluate_all_finds_only_finished_runs(tmp_path):
    finished = tmp_path / "a" / "T--ET(x)"
    unfinished = tmp_path / "T--EF(x)"
    for folder in (finished, unfinished):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (finished / "metrics.json").write_text("{}")
    assert load_script("evaluation/evaluate_all.py").finished_runs(tmp_path) == [finished]
