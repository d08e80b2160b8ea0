"""The few command-line arguments every script in `training/` shares, so that a recipe
runs as published (hub model ids, MELD at datasets/MELD) or offline on local folders."""

import argparse


def recipe_arguments(description: str, text_model: str, argv: "list[str] | None" = None) -> argparse.Namespace:
    """Parse a recipe's arguments: DATA_DIR, --text-model, --label-type, --epochs (a scale
    for every stage; 0 keeps each stage's own), --batch-size, --seed, --output-dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("data", nargs="?", default="datasets/MELD", help="MELD folder")
    parser.add_argument("--text-model", default=text_model, help="text encoder: model id or local folder")
    parser.add_argument("--label-type", dest="task", default="emotion", choices=["emotion", "sentiment"])
    parser.add_argument("--epochs", type=int, default=0, help="epochs of every stage (0: the recipe's own)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="checkpoints")
    return parser.parse_args(argv)
