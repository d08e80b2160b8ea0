"""The few command-line arguments every script in `training/` shares, so that a recipe
runs as published (hub model ids, MELD at datasets/MELD) or offline on local folders."""

import argparse
from typing import Optional


def recipe_arguments(description: str, argv: "list[str] | None" = None, text_model: Optional[str] = None,
                     audio_model: Optional[str] = None, video_model: Optional[str] = None,
                     choices: "dict[str, tuple[str, tuple[str, ...]]] | None" = None) -> argparse.Namespace:
    """Parse a recipe's arguments: DATA_DIR, a model flag for each encoder the recipe uses
    (--text-model, --audio-model, --video-model, defaulting to the given ids), --label-type,
    --epochs (every stage's epochs; 0 keeps each stage's own), --batch-size, --seed,
    --output-dir, and the recipe's own `choices` (flag -> (default, valid values))."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", default="datasets/MELD", help="MELD folder")
    for flag, default in (("--text-model", text_model), ("--audio-model", audio_model), ("--video-model", video_model)):
        if default is not None:
            parser.add_argument(flag, default=default, help=f"{flag[2:].split('-')[0]} encoder: model id or local folder")
    parser.add_argument("--label-type", dest="task", default="emotion", choices=["emotion", "sentiment"])
    parser.add_argument("--epochs", type=int, default=0, help="epochs of every stage (0: the recipe's own)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="checkpoints")
    for flag, (default, valid) in (choices or {}).items():
        parser.add_argument(flag, default=default, choices=valid)
    return parser.parse_args(argv)
