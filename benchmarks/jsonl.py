"""Shared by the benchmark scripts: each result is one JSON line, printed and appended to a
file, and the only thing on stdout (training progress goes to stderr); the machine in words;
a finished run's epoch seconds."""

import contextlib
import csv
import json
import os
import platform
import sys
from pathlib import Path

import torch

from recognize.checkpoint import HISTORY


def emit(result: dict, output: "str | None") -> None:
    """Print `result` as one JSON line and append it to `output` when given."""
    line = json.dumps(result)
    print(line, flush=True)
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


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
