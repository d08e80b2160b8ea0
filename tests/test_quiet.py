"""What the command line shows of transformers' logging (`recognize.quiet`): errors, and a
backbone's load report when the model folder lacks weights; not a report of unused weights
alone, nor other warnings."""

import logging
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file
from transformers.utils import logging as hf_logging

from recognize.model.encoders import load_backbone
from recognize.quiet import LOAD_REPORT_LOGGER

from helpers import offline_and_quiet  # noqa: F401 (an autouse fixture: transformers' logging as the CLI sets it)


class Collect(logging.Handler):
    """Keeps the messages that reach transformers' own handler."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def edited_copy(model: Path, folder: Path, edit) -> Path:
    """A copy of the model folder `model` whose weights are `edit(weights)`."""
    shutil.copytree(model, folder)
    save_file(edit(load_file(folder / "model.safetensors")), folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_a_load_report_of_missing_weights_shows_and_other_warnings_do_not(tiny_bert, tmp_path):
    lacking = edited_copy(tiny_bert, tmp_path / "lacking", lambda w: {k: v for k, v in w.items() if "layer.1.output.dense" not in k})
    extra = edited_copy(tiny_bert, tmp_path / "extra", lambda w: {**w, "pretraining_head.weight": w["pooler.dense.weight"].clone()})
    shown = Collect()
    library = hf_logging.get_logger("transformers")
    library.addHandler(shown)
    try:
        load_backbone(str(lacking))
        load_backbone(str(extra))
        hf_logging.get_logger("transformers.tokenization_utils_base").warning("a tokenizer note")
        hf_logging.get_logger(LOAD_REPORT_LOGGER).warning("This checkpoint seem corrupted.")
    finally:
        library.removeHandler(shown)

    assert len(shown.messages) == 2, shown.messages
    report, corrupted = shown.messages
    assert "BertModel LOAD REPORT" in report and str(lacking) in report
    assert sorted(line.split()[0] for line in report.splitlines() if "| MISSING" in line) == [
        "encoder.layer.1.output.dense.bias", "encoder.layer.1.output.dense.weight"]
    assert corrupted == "This checkpoint seem corrupted."
