"""Shared by the benchmark scripts: each result is one JSON line, printed and appended to a file."""

import json


def emit(result: dict, output: "str | None") -> None:
    """Print `result` as one JSON line and append it to `output` when given."""
    line = json.dumps(result)
    print(line, flush=True)
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
