"""The command line's handling of bad input: each case exits with code 1, prints nothing on
stdout and exactly one line on stderr, "error: ..." naming the problem. Run in-process
with Typer's CliRunner, offline; `meld_dir` and `tiny_bert` come from conftest.py."""

from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from recognize.checkpoint import CONFIG, checkpoint_record, write_json
from recognize.cli import app
from recognize.config import ExperimentConfig
from recognize.dataset.synthetic import write_synthetic_meld

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
}
"""`train` flags (split on spaces) -> the one line they must fail with."""


@pytest.fixture(autouse=True)
def offline_and_quiet(monkeypatch):
    """Offline hub, and transformers' logging set as `recognize.cli.main` sets it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once, at import; without this a hub id would be retried online
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    verbosity, progress = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    yield
    hf_logging.set_verbosity(verbosity)
    if progress:
        hf_logging.enable_progress_bar()


def error_line(*args: object) -> str:
    """Run the CLI with `args`; check that it failed cleanly (exit code 1, no traceback,
    nothing on stdout, one line on stderr) and return that line."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit), f"{result.exception!r}\n{result.output}"
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_missing_data_folder(tmp_path: Path, tiny_bert: Path) -> None:
    data = tmp_path / "absent"

    assert error_line("train", data, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck") == (
        f"error: {data}: data folder not found (expected a MELD folder with train_sent_emo.csv)"
    )


def test_data_folder_without_train_csv(tmp_path: Path, tiny_bert: Path) -> None:
    data = write_synthetic_meld(tmp_path / "MELD", dialogues={"dev": 2, "test": 2})

    assert error_line("train", data, "--text-model", tiny_bert, "--output-dir", tmp_path / "ck") == (
        f"error: {data / 'train_sent_emo.csv'}: CSV not found in the data folder"
    )


@pytest.mark.parametrize("flags", BAD_FLAGS)
def test_bad_train_flags(meld_dir: Path, tmp_path: Path, flags: str) -> None:
    assert error_line("train", meld_dir, "--output-dir", tmp_path / "ck", *flags.split()) == BAD_FLAGS[flags]


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


def test_existing_checkpoint_needs_overwrite_or_resume(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    run_dir = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="F", output_dir=str(tmp_path / "ck")).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")

    line = error_line("train", meld_dir, "--text-model", tiny_bert, "--mode", "frozen", "--output-dir", tmp_path / "ck")

    assert line == f"error: {run_dir}: checkpoint folder exists; pass --overwrite to replace it or --resume to continue it"
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]


def test_overwrite_with_bad_data_keeps_the_old_run(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    run_dir = ExperimentConfig(data=str(meld_dir), modal="A", audio_model=str(tiny_bert), output_dir=str(tmp_path / "ck")).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")

    line = error_line("train", meld_dir, "--modal", "A", "--audio-model", tiny_bert, "--output-dir", tmp_path / "ck", "--overwrite")

    assert line.startswith(f"error: {meld_dir / 'audios' / 'train'}: no such folder")
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]


def test_eval_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "no-run"

    assert error_line("eval", folder) == f"error: {folder}: checkpoint folder not found"


def test_eval_folder_without_config(tmp_path: Path) -> None:
    folder = tmp_path / "T--ET(tiny-bert)"
    folder.mkdir()

    assert error_line("eval", folder) == f"error: {folder}: not a checkpoint folder (no config.json)"


def test_eval_checkpoint_without_weights(meld_dir: Path, tmp_path: Path, tiny_bert: Path) -> None:
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), output_dir=str(tmp_path / "ck"))
    write_json(config.run_dir / CONFIG, checkpoint_record(config, {}))

    assert error_line("eval", config.run_dir) == (
        f"error: {config.run_dir}: checkpoint has no model.safetensors (training never finished an epoch?)"
    )


def test_missing_data_folder_reported_before_the_model_loads(tmp_path: Path) -> None:
    data = tmp_path / "absent"

    assert error_line("train", data, "--output-dir", tmp_path / "ck") == (
        f"error: {data}: data folder not found (expected a MELD folder with train_sent_emo.csv)"
    )


@pytest.mark.parametrize("name", ["runs [old]", "runs[/b]"])
def test_error_message_printed_verbatim(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name / "ckpt"

    assert error_line("eval", folder) == f"error: {folder}: checkpoint folder not found"
