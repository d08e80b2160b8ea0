"""Shared by the benchmark scripts: each result is one JSON line, printed and appended to a
file, and the only thing on stdout (training progress goes to stderr); the machine in words;
a finished run's epoch seconds and scores."""

import contextlib
import csv
import json
import os
import platform
import sys
from pathlib import Path

import torch

from recognize.checkpoint import HISTORY, METRICS, atomic_write, read_json
from recognize.errors import RecognizeError


def emit(result: dict, output: "str | None") -> None:
    """Print `result` as one JSON line and append it to `output` when given."""
    line = json.dumps(result)
    print(line, flush=True)
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def emit_together(results: list[dict], output: "str | None") -> None:
    """Print each of `results` as one JSON line and append them all to `output` when given, at
    once: the file is replaced by its old lines and the new ones, so a reader (or a failure
    while writing) never leaves part of them."""
    lines = "".join(json.dumps(result) + "\n" for result in results)
    print(lines, end="", flush=True)
    if output:
        path = Path(output)
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        old += "\n" if old and not old.endswith("\n") else ""
        atomic_write(path, lambda temp: temp.write_text(old + lines, encoding="utf-8"))


def run_scores(folder: Path) -> dict:
    """A finished run's scores as result lines give them (from its metrics.json): the best
    epoch, its dev weighted-F1, and its test accuracy and weighted-F1, in percent with two decimals."""
    metrics = read_json(folder / METRICS)
    if "test" not in metrics:
        raise RecognizeError(f"{folder / METRICS}: no test scores (the run's data folder has no test split)")
    dev, test = metrics["dev"], metrics["test"]
    return {"best_epoch": metrics["best_epoch"], "dev_weighted_f1": round(100 * dev["weighted_f1"], 2),
            "test_accuracy": round(100 * test["accuracy"], 2), "test_weighted_f1": round(100 * test["weighted_f1"], 2)}


def epoch_seconds(folder: Path) -> list[float]:
    """The training seconds of each epoch of a finished run (its history.csv)."""
    with open(folder / HISTORY, newline="") as handle:
        return [float(row["seconds"]) for row in csv.DictReader(handle)]


def progress_to_stderr() -> contextlib.AbstractContextManager:
    """A context in which what is printed (the training loop's epoch lines, a Trainer's logs)
    goes to stderr, so that stdout holds the JSON lines alone."""
    return contextlib.redirect_stdout(sys.stderr)


def machine(*details: str) -> str:
    """The machine a benchmark ran on, in words: the GPU torch sees (if any), the CPU, its
    cores and torch's threads, then `details` (e.g. a decoder's version)."""
    gpu = [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else []
    cpu = f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return ", ".join([*gpu, cpu, *details])
