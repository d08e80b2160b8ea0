"""Evaluate every checkpoint folder under a directory on one split and print one line per
run (accuracy and weighted-F1 in percent), skipping folders that are not finished runs.

    python evaluation/evaluate_all.py checkpoints --split test [--data datasets/MELD]
"""

import argparse
from pathlib import Path

from recognize import RecognizeError, evaluate
from recognize.checkpoint import CONFIG, METRICS
from recognize.scripting import run_script


def finished_runs(root: Path) -> list[Path]:
    """Folders under `root` (at any depth) holding a config.json and a metrics.json."""
    return sorted(p.parent for p in root.rglob(CONFIG) if (p.parent / METRICS).is_file())


def main(argv: "list[str] | None" = None) -> None:
    """Parse the options, evaluate each finished run, print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder holding checkpoint folders")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--data", help="MELD folder (default: each run's own)")
    args = parser.parse_args(argv)
    for folder in finished_runs(args.root):
        name = folder.relative_to(args.root)  # a seed-N folder, or a recipe's second stage, named in full
        try:
            metrics = evaluate(folder, split=args.split, data=args.data)
        except RecognizeError as error:
            print(f"{name}: skipped ({error})")
            continue
        print(f"{name}: accuracy {100 * metrics['accuracy']:.2f}  weighted-F1 {100 * metrics['weighted_f1']:.2f}")


if __name__ == "__main__":
    run_script(main)
