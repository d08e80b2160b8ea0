"""Helpers shared by test modules (not fixtures: those live in conftest.py)."""

import csv
import importlib.util
from pathlib import Path

import pytest

from recognize import engine, train

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
