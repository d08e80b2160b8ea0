"""Shared by the benchmark scripts that train in stages (two_stage.py, quality.py): a later
stage's settings from the stage before it, and the "Training Classification" stage that
follows full tuning."""

from pathlib import Path
from typing import Any

from recognize import ExperimentConfig

CLASSIFIER_STAGE: dict[str, Any] = {"mode": "frozen", "epochs": 4, "lr": 1e-3}
"""The classifier alone on the encoder an earlier stage tuned (the encoder frozen, the head
trained on): "Full Tuning -> Training Classification" after a full-tuning stage."""


def next_stage(previous: ExperimentConfig, source: "str | Path", **overrides: Any) -> ExperimentConfig:
    """`previous`'s settings with `overrides`, initialised from `source` (`--init-from`): the
    earlier stage's checkpoint folder, or its setting folder for `train_seeds`, which starts
    each seed from the same seed's run."""
    return ExperimentConfig.from_dict({**previous.to_dict(), "init_from": [str(source)], **overrides})
