"""Evaluate every finished checkpoint folder under a directory on one split and print one
line per run (accuracy, weighted-F1 and macro-F1 in percent). Folders that are not finished runs are
passed over; a run that cannot be evaluated is named on stderr with the reason, and when
none could be, the script ends with an error.

    python evaluation/evaluate_all.py checkpoints --split test [--data datasets/MELD]
"""

import argparse
import sys
from pathlib import Path

from recognize import RecognizeError, evaluate
from recognize.checkpoint import METRICS
from recognize.report import run_folders
from recognize.scripting import ScriptHelpFormatter, run_script, score_line


def main(argv: "list[str] | None" = None) -> None:
    """Parse the options, evaluate each finished run, print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=ScriptHelpFormatter)
    parser.add_argument("root", type=Path, help="folder holding checkpoint folders")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="split to evaluate on")
    parser.add_argument("--data", help="MELD folder (default: each run's own)")
    args = parser.parse_args(argv)
    evaluated = 0
    for folder in run_folders(args.root):
        if not (folder / METRICS).is_file():
            continue  # interrupted or still training: not a finished run
        name = folder.relative_to(args.root)  # a seed-N folder, or a recipe's later stage, named in full
        try:
            metrics = evaluate(folder, split=args.split, data=args.data)
        except RecognizeError as error:
            print(f"{name}: skipped ({error})", file=sys.stderr)
            continue
        print(f"{name}: {score_line(metrics)}")
        evaluated += 1
    if not evaluated:
        raise RecognizeError(f"{args.root}: no finished run could be evaluated on {args.split}")


if __name__ == "__main__":
    run_script(main)
