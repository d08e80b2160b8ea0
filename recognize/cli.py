"""The `emotion-recognize` command line: a thin Typer layer over `recognize.train` and
`recognize.evaluate`. `train`'s options are generated from ExperimentConfig's fields, so
every flag is a field with its help text beside it.

Also runs as `python -m recognize` and `python recognize/cli.py`."""

import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Any, Callable, Optional, get_type_hints

if __package__ in (None, ""):  # `python recognize/cli.py`: import the package, not its folder's modules
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recognize.config import ExperimentConfig
from recognize.errors import RecognizeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multimodal emotion recognition on MELD: prepare data, train, evaluate, demo.")
console = Console()


def _fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run `command`, turning a RecognizeError into one line on stderr and exit code 1."""
    def run(**kwargs: Any) -> Any:
        try:
            return command(**kwargs)
        except RecognizeError as error:
            Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
    run.__name__, run.__doc__ = command.__name__, command.__doc__
    run.__signature__ = inspect.signature(command)  # type: ignore[attr-defined]
    return run


def _config_options() -> list[inspect.Parameter]:
    """One Typer option per ExperimentConfig field (DATA_DIR is the argument)."""
    hints = get_type_hints(ExperimentConfig)
    params = []
    for f in dataclasses.fields(ExperimentConfig):
        if f.name == "data":
            continue
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        annotation, default = hints[f.name], f.default
        if f.default_factory is not dataclasses.MISSING:  # list fields: a repeatable option
            annotation, default = Optional[list[str]], None
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                        default=typer.Option(default, flag, help=f.metadata["help"])))
    return params


def train(data: str, overwrite: bool, resume: bool, **settings: Any) -> None:
    """Train a model on a MELD folder and save it as a checkpoint folder."""
    from recognize.engine import process_state
    from recognize.run import train as run_training

    settings["init_from"] = settings.get("init_from") or []
    config = ExperimentConfig(data=data, **settings)
    folder = run_training(config, overwrite=overwrite, resume=resume)
    if process_state().is_main_process:
        _print_summary(folder)


train.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                      default=typer.Argument("datasets/MELD", metavar="DATA_DIR", help="MELD folder (the three CSVs at its root).")),
    *_config_options(),
    inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--overwrite", help="Replace an existing checkpoint folder of the same name.")),
    inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--resume", help="Continue an interrupted run from its last completed epoch.")),
])
app.command("train")(_fail_cleanly(train))


@app.command("eval")
@_fail_cleanly
def evaluate_command(
    checkpoint: Path = typer.Argument(..., metavar="CKPT_DIR", help="A checkpoint folder written by `train`."),
    data: Optional[str] = typer.Option(None, "--data", help="MELD folder to evaluate on (default: the one in the checkpoint's config)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: test, dev or train."),
) -> None:
    """Evaluate a checkpoint folder on a split; writes eval-{split}.json and predictions-{split}.csv."""
    from recognize.evaluator import evaluate

    metrics = evaluate(checkpoint, split=split, data=data)
    console.print(metrics_table(escape(f"{checkpoint.name}: {split} ({metrics['samples']} utterances)"), metrics))
    sources = f" (initialised from {', '.join(metrics['initialised_from'])})" if metrics["initialised_from"] else ""
    console.print(escape(f"training: {metrics['training']}{sources}"), highlight=False)
    console.print(escape(f"wrote {checkpoint / f'eval-{split}.json'} and {checkpoint / f'predictions-{split}.csv'}"), highlight=False)


@app.command("prepare")
@_fail_cleanly
def prepare_command(
    source: Path = typer.Argument(..., metavar="SRC", help="MELD download: MELD.Raw (the CSVs beside train_splits/, dev_splits_complete/, output_repeated_splits_test/) or a folder with videos/{train,dev,test}/."),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder to prepare (default: SRC itself; its CSVs and clips are then left as they are)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes extracting audio (default: up to 4, by the machine's cores)."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="Audio longer than this is cut here and reported (default: 60)."),
) -> None:
    """Extract 16 kHz mono flac from MELD's clips, link the videos, repair the CSVs; report bad clips (prepare-report.json)."""
    from recognize.dataset.prepare import REPORT, prepare, summary_table

    report = prepare(source, output, workers=workers, max_seconds=max_seconds)
    console.print(summary_table(report))
    console.print(escape(f"wrote {Path(report['output']) / REPORT}"), highlight=False)


@app.command("demo")
@_fail_cleanly
def demo_command(
    output: Path = typer.Option(Path("checkpoints/demo"), "--output", help="Folder for the generated data, tiny model and checkpoint."),
    epochs: int = typer.Option(6, "--epochs", help="Training epochs."),
) -> None:
    """Show the whole path offline: generate MELD-format data and a tiny BERT, train, evaluate."""
    from recognize.dataset.synthetic import vocabulary, write_synthetic_meld
    from recognize.evaluator import evaluate
    from recognize.run import train as run_training
    from recognize.tiny import write_tiny_bert

    data = write_synthetic_meld(output / "MELD")
    model = write_tiny_bert(output / "tiny-bert", vocabulary(), hidden=64)
    console.print(escape(f"generated a MELD-format folder at {data} and a tiny BERT at {model}"), highlight=False)
    config = ExperimentConfig(data=str(data), text_model=str(model), task="emotion", mode="full", epochs=epochs,
                              batch_size=16, lr=1e-3, warmup=0.1, output_dir=str(output / "checkpoints"))
    folder = run_training(config, overwrite=True)
    _print_summary(folder)
    metrics = evaluate(folder, split="test")
    console.print(metrics_table(escape(f"{folder.name}: test"), metrics))


def metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    """A rich table of overall and per-class scores, in percent."""
    table = Table(title=title, title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in metrics["per_class"].items():
        table.add_row(name, f"{scores['precision']:.2%}", f"{scores['recall']:.2%}", f"{scores['f1']:.2%}", str(scores["support"]))
    table.add_section()
    table.add_row("weighted", f"{metrics['precision']:.2%}", f"{metrics['recall']:.2%}", f"{metrics['weighted_f1']:.2%}", str(metrics["samples"]))
    table.add_row("accuracy", "", "", f"{metrics['accuracy']:.2%}", "")
    table.add_row("macro-F1", "", "", f"{metrics['macro_f1']:.2%}", "")
    return table


def _print_summary(folder: Path) -> None:
    """Print where a run landed and its best-epoch dev (and test) scores."""
    from recognize.checkpoint import METRICS, read_json

    metrics = read_json(folder / METRICS)
    line = f"saved {folder}  best epoch {metrics['best_epoch']}: dev acc {metrics['dev']['accuracy']:.2%} wF1 {metrics['dev']['weighted_f1']:.2%}"
    if "test" in metrics:
        line += f"; test acc {metrics['test']['accuracy']:.2%} wF1 {metrics['test']['weighted_f1']:.2%}"
    console.print(escape(line), highlight=False)


def main() -> None:
    """Entry point of the `emotion-recognize` console script."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    app()


if __name__ == "__main__":
    main()
