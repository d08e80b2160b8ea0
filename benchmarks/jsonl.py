"""Shared by the benchmark scripts: each result is one JSON line, printed and appended to a
file; a finished run's epoch seconds."""

import csv
import json
from pathlib import Path

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
