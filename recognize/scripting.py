"""What the scripts in `training/` and `evaluation/` share: the few command-line arguments
of a recipe, so that it runs as published (hub model ids, MELD at datasets/MELD) or offline
on local folders, how a script prints scores (percent, named as the CLI names them), and the
way a script ends on bad input (one line, as the CLI does)."""

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

from recognize.errors import RecognizeError, first_line
from recognize.evaluator import evaluate
from recognize.report import SCORE_TITLES

SHOWN_SCORES: tuple[str, ...] = ("accuracy", "weighted_f1", "macro_f1")
"""The scores a script prints for a run, in order."""


class ScriptHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help of a script: its docstring as written, and each option's default after its help
    (unless the help already speaks of its default, or there is none to show)."""

    def _get_help_string(self, action: argparse.Action) -> "str | None":
        """The option's help, with `(default: X)` appended where X says something."""
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


def recipe_arguments(description: str, argv: "list[str] | None" = None, text_model: Optional[str] = None,
                     audio_model: Optional[str] = None, video_model: Optional[str] = None,
                     choices: "dict[str, tuple[str, tuple[str, ...]]] | None" = None) -> argparse.Namespace:
    """Parse a recipe's arguments: DATA_DIR, a model flag for each encoder the recipe uses
    (--text-model, --audio-model, --video-model, defaulting to the given ids), --label-type,
    --epochs (every stage's epochs; 0 keeps each stage's own), --batch-size, --seed,
    --output-dir, --overwrite or --resume, and the recipe's own `choices` (flag -> (default, valid values))."""
    parser = argparse.ArgumentParser(description=description, formatter_class=ScriptHelpFormatter)
    parser.add_argument("data", nargs="?", default="datasets/MELD", help="MELD folder")
    for flag, default in (("--text-model", text_model), ("--audio-model", audio_model), ("--video-model", video_model)):
        if default is not None:
            parser.add_argument(flag, default=default, help=f"{flag[2:].split('-')[0]} encoder: model id or local folder")
    parser.add_argument("--label-type", dest="task", default="emotion", choices=["emotion", "sentiment"], help="task")
    parser.add_argument("--epochs", type=int, default=0, help="epochs of every stage (0: the recipe's own)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per optimiser step")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--output-dir", default="checkpoints", help="folder the runs go under")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the recipe's checkpoint folders that exist (default: an existing one is an error)")
    existing.add_argument("--resume", action="store_true",
                          help="keep the stages that finished, continue the one that was interrupted, run the rest")
    for flag, (default, valid) in (choices or {}).items():
        parser.add_argument(flag, default=default, choices=valid)
    return parser.parse_args(argv)


def existing_runs(args: argparse.Namespace) -> dict[str, bool]:
    """What a recipe does with a stage's checkpoint folder that exists (`--overwrite`,
    `--resume`, else stop): `train`'s `overwrite` and `resume` arguments."""
    return {"overwrite": args.overwrite, "resume": args.resume}


def stages_folder(args: argparse.Namespace, recipe: str) -> str:
    """Where a recipe of several stages writes them: `{--output-dir}/{recipe}/`, a folder of
    its own, so that its stages never meet another recipe's (or `emotion-recognize train`'s)
    runs of the same setting. The recipes pass their file name (`Path(__file__).stem`), so a
    copy saved under a new name writes to a folder of its own too."""
    return str(Path(args.output_dir) / recipe)


def score_line(scores: "dict[str, float]") -> str:
    """A run's accuracy, weighted-F1 and macro-F1 (fractions in `scores`) in percent, named
    as `emotion-recognize eval` names them: `accuracy 63.14%  weighted-F1 61.34%  macro-F1 45.20%`."""
    return "  ".join(f"{SCORE_TITLES[key]} {100 * scores[key]:.2f}%" for key in SHOWN_SCORES)


def print_test_scores(*folders: Path) -> None:
    """Evaluate each checkpoint folder on the test split and print `{folder}: test {score_line}`."""
    for folder in folders:
        print(f"{folder}: test {score_line(evaluate(folder, split='test'))}")


def run_script(main: Callable[["list[str]"], None], argv: "list[str] | None" = None) -> None:
    """Run a script's `main` on `argv` (default: the command line's arguments). A
    RecognizeError ends the process as the CLI ends it: `error: <one line>` on stderr and
    exit code 1, no traceback. Hugging Face's loading progress bars and warnings are
    silenced as the CLI silences them (`recognize.quiet`). A multi-process run leaves its process
    group when `main` succeeded (`recognize.process_group`)."""
    from recognize.process_group import leaving_process_group_on_success
    from recognize.quiet import quiet_hugging_face

    quiet_hugging_face()
    try:
        with leaving_process_group_on_success():
            main(sys.argv[1:] if argv is None else argv)
    except RecognizeError as error:
        print(f"error: {first_line(error)}", file=sys.stderr)
        raise SystemExit(1) from None
