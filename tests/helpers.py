"""Helpers shared by test modules (not fixtures: those live in conftest.py)."""

import csv
import importlib.util
from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from recognize import engine, train
from recognize.cli import app
from recognize.quiet import quiet_hugging_face

ROOT = Path(__file__).resolve().parent.parent


def load_script(relative: str):
    """Import a script file (training/..., evaluation/...) as a module."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def history_without_time(folder: Path) -> list[dict]:
    """A run's history.csv rows without their timing columns (which differ run to run)."""
    with open(folder / "history.csv") as handle:
        return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_second")} for row in csv.DictReader(handle)]


def train_interrupted(config, after_epoch: int, monkeypatch) -> None:
    """Train `config` and kill it (KeyboardInterrupt) right after epoch `after_epoch`'s
    resumable state is written."""
    save_state = engine.save_state

    def save_then_die(run_dir, state, *args):
        save_state(run_dir, state, *args)
        if state.epoch == after_epoch:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(engine, "save_state", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            train(config)
    assert not (config.run_dir / "metrics.json").exists() and (config.run_dir / "state" / "latest.json").exists()


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


@pytest.fixture(autouse=True)
def offline_and_quiet(monkeypatch):
    """Offline hub, and transformers' logging set as `recognize.cli.main` sets it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once, at import; without this a hub id would be retried online
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    verbosity, progress = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    quiet_hugging_face()
    yield
    hf_logging.set_verbosity(verbosity)
    if progress:
        hf_logging.enable_progress_bar()
