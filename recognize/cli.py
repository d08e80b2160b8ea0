"""The `emotion-recognize` command line: a thin Typer layer over `recognize.train` and
`recognize.evaluate`. `train`'s options are generated from ExperimentConfig's fields, so
every flag is a field with its help text beside it.

Also runs as `python -m recognize` and `python recognize/cli.py`."""

import dataclasses
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, get_type_hints

if __package__ in (None, ""):  # `python recognize/cli.py`: import the package, not its folder's modules
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recognize.config import ExperimentConfig, cli_flag
from recognize.errors import RecognizeError
from recognize.flag_scope import check_given_flags

# rich_markup_mode=None: click's plain help, which wraps long defaults (model ids, paths) in a
# column twice as wide as rich's panels give them, where rich cut them short at 80 columns
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Multimodal emotion recognition on MELD: prepare data, train, evaluate, report, predict, cache features, demo.")
console = Console(quiet=os.environ.get("RANK", "0") != "0")
"""Results go to the terminal once: under torchrun / accelerate launch, only rank 0 prints them."""


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


def _config_options(shown: Optional[frozenset[str]] = None) -> list[inspect.Parameter]:
    """One Typer option per ExperimentConfig field (DATA_DIR is the argument); with `shown`,
    --help lists only those fields' options (the others are still parsed, to be refused by name)."""
    hints = get_type_hints(ExperimentConfig)
    params = []
    for f in dataclasses.fields(ExperimentConfig):
        if f.name == "data" or not f.metadata["cli"]:
            continue
        flag = cli_flag(f.name)
        if f.default is True:  # a switch that is on unless turned off
            flag = f"{flag}/--no-{flag[2:]}"
        annotation, default = hints[f.name], f.default
        if f.default_factory is not dataclasses.MISSING:  # list fields: a repeatable option
            annotation, default = Optional[list[str]], None
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                        default=typer.Option(default, flag, help=f.metadata["help"],
                                                             hidden=shown is not None and f.name not in shown)))
    return params


def train(command_line: typer.Context, data: str, overwrite: bool, resume: bool, seeds: Optional[str], **settings: Any) -> None:
    """Train a model on a MELD folder and save it as a checkpoint folder."""
    from recognize.engine import process_state
    from recognize.run import train as run_training, train_seeds
    from recognize.seeds import AGGREGATE, parse_seeds, seed_folders

    settings["init_from"] = settings.get("init_from") or []
    seed_list = parse_seeds(seeds) if seeds is not None else None
    if seed_list is not None and settings["seed"] != ExperimentConfig.seed:  # it would be ignored
        raise RecognizeError(f"--seed {settings['seed']} and --seeds {seeds} exclude each other: --seeds gives each run its seed")
    config = ExperimentConfig(data=data, **settings)
    check_given_flags(config, given_settings(command_line, settings))
    if seed_list is None:
        folder = run_training(config, overwrite=overwrite, resume=resume)
        if process_state().is_main_process:
            _print_summary(folder)
        return
    group = train_seeds(config, seed_list, overwrite=overwrite, resume=resume)
    if process_state().is_main_process:
        for member in seed_folders(group):
            _print_summary(member)
        _print_aggregate(group / AGGREGATE)


def given_settings(command_line: typer.Context, settings: dict[str, Any]) -> list[str]:
    """The names among `settings` whose flags the `command_line` (or an environment variable)
    gave, not left at their defaults: a flag typed with its default value counts too."""
    return [name for name in settings if command_line.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")]


train.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("command_line", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
    inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                      default=typer.Argument("datasets/MELD", metavar="DATA_DIR", help="MELD folder (the three CSVs at its root).")),
    *_config_options(),
    inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--overwrite", help="Replace an existing checkpoint folder of the same name.")),
    inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--resume", help="Continue an interrupted run from its last completed epoch.")),
    inspect.Parameter("seeds", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                      default=typer.Option(None, "--seeds", help="Train once per seed, e.g. 1,2,3: {run_name}/seed-{s}/ each, and {run_name}/aggregate.json (mean and std).")),
])
app.command("train")(_fail_cleanly(train))


TRUST_HELP = ("Allow model code from the backbones' repositories (off unless you pass this, whatever the "
              "checkpoint's config.json says).")


@app.command("eval")
@_fail_cleanly
def evaluate_command(
    checkpoints: list[Path] = typer.Argument(..., metavar="CKPT_DIR...", help="A checkpoint folder written by `train` (several, or setting folders of seeds, with --ensemble)."),
    data: Optional[str] = typer.Option(None, "--data", help="MELD folder to evaluate on (default: the one in the checkpoint's config)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: test, dev or train."),
    compare: Optional[Path] = typer.Option(None, "--compare", metavar="CKPT_B", help="Also evaluate this checkpoint on the same rows; print both side by side with a paired bootstrap 95% interval for the weighted-F1 difference (of two setting folders: of their seeds' mean weighted-F1)."),
    ensemble: bool = typer.Option(False, "--ensemble", help="Evaluate the mean of the checkpoints' class probabilities (a setting folder: of its seeds) as one model."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="With --ensemble: where the ensemble's eval files go (default: SETTING_DIR/ensemble for one setting folder)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Evaluate a checkpoint folder (or each seed of a --seeds folder, or an ensemble) on a split: eval, predictions, per-class, confusion files."""
    from recognize.checkpoint import CONFIG
    from recognize.evaluator import evaluate, evaluate_seeds
    from recognize.seeds import run_label, seed_folders

    if ensemble:
        if compare is not None:
            raise RecognizeError("--compare: not with --ensemble; evaluate the ensemble, then compare its predictions")
        _evaluate_ensemble(checkpoints, split, data, output_dir, trust_remote_code)
        return
    if output_dir is not None:
        raise RecognizeError("--output-dir: only with --ensemble (a checkpoint's eval files go into its folder)")
    if len(checkpoints) > 1:
        raise RecognizeError(f"CKPT_DIR: {len(checkpoints)} folders given; one, or several with --ensemble")
    checkpoint = checkpoints[0]
    is_setting = {folder: not (folder / CONFIG).is_file() and bool(seed_folders(folder))
                  for folder in (checkpoint, *([compare] if compare is not None else []))}
    if compare is not None and is_setting[checkpoint] != is_setting[compare]:
        setting, single = (checkpoint, compare) if is_setting[checkpoint] else (compare, checkpoint)
        raise RecognizeError(f"--compare: {setting} holds several seeds, {single} is one run; compare two single runs "
                             f"or two setting folders of seeds")
    if compare is not None and is_setting[checkpoint]:
        _compare_settings(checkpoint, compare, split, data, trust_remote_code)
        return
    if is_setting[checkpoint]:
        summary = evaluate_seeds(checkpoint, split=split, data=data, trust_remote_code=trust_remote_code)
        for seed, metrics in summary["per_seed"].items():
            console.print(escape(f"seed {seed}: acc {metrics['accuracy']:.2%}  wF1 {metrics['weighted_f1']:.2%}  "
                                 f"macro-F1 {metrics['macro_f1']:.2%}"), highlight=False)
        _print_aggregate(checkpoint / f"eval-{split}.json")
        return
    if compare is not None:  # before either is evaluated
        _check_comparable(checkpoint, compare)
    metrics = evaluate(checkpoint, split=split, data=data, trust_remote_code=trust_remote_code)
    if compare is not None:
        other = evaluate(compare, split=split, data=metrics["data"], trust_remote_code=trust_remote_code)
        _print_comparison(checkpoint, metrics, compare, other, split)
        return
    console.print(metrics_table(escape(f"{run_label(checkpoint)}: {split} ({metrics['samples']} utterances)"), metrics))
    sources = f" (initialised from {', '.join(metrics['initialised_from'])})" if metrics["initialised_from"] else ""
    console.print(escape(f"training: {metrics['training']}{sources}"), highlight=False)
    beside = ", ".join((f"predictions-{split}.csv", f"per-class-{split}.csv", f"confusion-{split}.png"))
    console.print(escape(f"wrote {checkpoint / f'eval-{split}.json'}, and {beside} beside it"), highlight=False)


def _evaluate_ensemble(paths: list[Path], split: str, data: Optional[str], output_dir: Optional[Path],
                       trust_remote_code: bool) -> None:
    """`eval --ensemble`: each member's scores, then the ensemble's table and where its files went."""
    from recognize.ensemble import default_output, evaluate_ensemble
    from recognize.seeds import run_label

    def show_member(folder: Path, metrics: dict[str, Any]) -> None:
        console.print(escape(f"{run_label(folder)}: acc {metrics['accuracy']:.2%}  wF1 {metrics['weighted_f1']:.2%}  "
                             f"macro-F1 {metrics['macro_f1']:.2%}"), highlight=False)

    target = output_dir if output_dir is not None else default_output(paths)
    metrics = evaluate_ensemble(paths, split=split, data=data, output_dir=target,
                                trust_remote_code=trust_remote_code, on_member=show_member)
    console.print(metrics_table(escape(f"{metrics['training']}: {split} ({metrics['samples']} utterances)"), metrics))
    beside = ", ".join((f"predictions-{split}.csv", f"per-class-{split}.csv", f"confusion-{split}.png"))
    console.print(escape(f"wrote {target / f'eval-{split}.json'}, and {beside} beside it"), highlight=False)


def _compare_settings(folder_a: Path, folder_b: Path, split: str, data: Optional[str], trust_remote_code: bool) -> None:
    """`eval A --compare B` of two setting folders: every seed of each evaluated on the same
    rows, their means side by side, and the bootstrap interval of the mean weighted-F1 difference."""
    from recognize.compare import compare_seed_predictions
    from recognize.evaluator import evaluate_seeds
    from recognize.seeds import seed_folders

    _check_comparable(seed_folders(folder_a)[0], seed_folders(folder_b)[0])
    a = evaluate_seeds(folder_a, split=split, data=data, trust_remote_code=trust_remote_code)
    b = evaluate_seeds(folder_b, split=split, data=next(iter(a["per_seed"].values()))["data"], trust_remote_code=trust_remote_code)
    samples = next(iter(a["per_seed"].values()))["samples"]
    table = Table(title=escape(f"{split} ({samples} utterances), mean ± std over the seeds"), title_justify="left")
    for column in ("", f"{folder_a.name} (seeds {', '.join(map(str, a['seeds']))})",
                   f"{folder_b.name} (seeds {', '.join(map(str, b['seeds']))})"):
        table.add_column(escape(column), justify="left" if not column else "right")
    for key, name in (("accuracy", "accuracy"), ("weighted_f1", "weighted-F1"), ("macro_f1", "macro-F1")):
        table.add_row(name, *(f"{100 * s['scores'][key]['mean']:.2f} ± {100 * s['scores'][key]['std']:.2f}" for s in (a, b)))
    console.print(table)
    names = list(next(iter(a["per_seed"].values()))["per_class"])
    result = compare_seed_predictions(seed_folders(folder_a), seed_folders(folder_b), split, names)
    console.print(escape(f"mean weighted-F1 A - B: {100 * result['difference']:+.2f} points, {result['confidence']:.0%} "
                         f"paired bootstrap interval [{100 * result['low']:+.2f}, {100 * result['high']:+.2f}] "
                         f"({result['resamples']} resamples of the {samples} utterances, every seed on each)"), highlight=False)


def _check_comparable(folder_a: Path, folder_b: Path) -> None:
    """Both are checkpoint folders of one label type, or RecognizeError saying which is not."""
    from recognize.checkpoint import read_checkpoint_config

    task_a, task_b = (read_checkpoint_config(folder)[0].task for folder in (folder_a, folder_b))
    if task_a != task_b:
        raise RecognizeError(f"--compare: {folder_a} predicts {task_a}, {folder_b} {task_b}; "
                             "compare two runs of one label type")


def _print_comparison(folder_a: Path, a: dict[str, Any], folder_b: Path, b: dict[str, Any], split: str) -> None:
    """Two evaluations side by side, and the bootstrap interval of their weighted-F1 difference."""
    from recognize.compare import compare_predictions
    from recognize.seeds import run_label

    table = Table(title=escape(f"{split} ({a['samples']} utterances)"), title_justify="left")
    for column in ("", run_label(folder_a), run_label(folder_b)):
        table.add_column(escape(column), justify="left" if not column else "right")
    for key, name in (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                      ("weighted_f1", "weighted-F1"), ("macro_f1", "macro-F1")):
        table.add_row(name, f"{a[key]:.2%}", f"{b[key]:.2%}")
    table.add_section()
    for name in a["per_class"]:
        table.add_row(f"F1 {name}", f"{a['per_class'][name]['f1']:.2%}", f"{b['per_class'][name]['f1']:.2%}"
                      if name in b["per_class"] else "-")
    table.add_row("training", escape(a["training"]), escape(b["training"]))
    console.print(table)
    result = compare_predictions(folder_a, folder_b, split, list(a["per_class"]))
    console.print(escape(f"weighted-F1 A - B: {100 * result['difference']:+.2f} points, {result['confidence']:.0%} paired "
                         f"bootstrap interval [{100 * result['low']:+.2f}, {100 * result['high']:+.2f}] "
                         f"({result['resamples']} resamples of the {a['samples']} utterances)"), highlight=False)


@app.command("report")
@_fail_cleanly
def report_command(
    checkpoints: Path = typer.Argument(Path("checkpoints"), metavar="CHECKPOINTS_DIR", help="Folder searched (recursively) for checkpoint folders."),
    format: str = typer.Option("markdown", "--format", help="Table format: markdown or csv."),
    split: str = typer.Option("test", "--split", help="Split whose scores are shown: test, dev, or any split `eval` was run on."),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the table to this file."),
    sort: Optional[str] = typer.Option(None, "--sort", help="Sort by a column: modality, backbones, fusion, task, training (ascending) or accuracy, precision, recall, weighted_f1, macro_f1 (best first)."),
    modal: Optional[str] = typer.Option(None, "--modal", help="Only this modality combination, e.g. T or T+A."),
    task: Optional[str] = typer.Option(None, "--label-type", help="Only this task: emotion or sentiment."),
) -> None:
    """Print the results table of the runs under a folder: one row per setting, mean ± std over its seeds, and a row per ensemble `eval --ensemble` scored there."""
    from recognize.checkpoint import atomic_write
    from recognize.report import FORMATS, ensemble_rows, find_runs, group_runs, select_rows

    if format not in FORMATS:
        raise RecognizeError(f"--format: unknown value '{format}'; valid: {', '.join(FORMATS)}")
    warnings = Console(stderr=True)

    def warn(line: str) -> None:
        warnings.print(f"warning: {escape(line)}", highlight=False, soft_wrap=True)

    runs = find_runs(checkpoints, split, warn=warn)
    if not runs:
        raise RecognizeError(f"{checkpoints}: no finished checkpoint folder with {split} scores found")
    rows = group_runs(runs, warn=warn) + ensemble_rows(checkpoints, runs, split, warn=warn)
    rows = select_rows(rows, modal=modal, task=task, sort=sort)
    table = FORMATS[format](rows)
    print(table, end="")
    if output is not None:
        atomic_write(output, lambda temp: temp.write_text(table, encoding="utf-8"))
        warnings.print(escape(f"wrote {output}"), highlight=False)


@app.command("predict")
@_fail_cleanly
def predict_command(
    checkpoints: list[Path] = typer.Argument(..., metavar="CKPT_DIR...", help="A checkpoint folder written by `train` (several, or setting folders of seeds, with --ensemble)."),
    text: Optional[str] = typer.Option(None, "--text", help="The utterance (for a model that reads text)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Its audio clip: a flac or wav, or a video (mp4) whose sound is read (for a model that reads audio)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Its video clip, an mp4 (for a model that reads video)."),
    context: Optional[list[str]] = typer.Option(None, "--context", help="A previous utterance of the dialogue, oldest first; repeat for several (\"Speaker: text\" each)."),
    speaker: str = typer.Option("", "--speaker", help="The utterance's speaker (used with dialogue context)."),
    input_file: Optional[Path] = typer.Option(None, "--input", help="A CSV of utterances (columns Utterance, Audio, Video as the model needs; Speaker, Dialogue_ID, Utterance_ID optional)."),
    output: Optional[Path] = typer.Option(None, "--output", help="With --input: write the predictions CSV here (default: print it)."),
    mask_missing: bool = typer.Option(False, "--mask-missing", help="Mask the audio or video the model takes where none is given (a T+A model on text alone; an --input row with an empty or no Audio/Video cell), as eval masks a missing clip."),
    ensemble: bool = typer.Option(False, "--ensemble", help="The mean of the checkpoints' class probabilities (a setting folder: of its seeds)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Class probabilities for one utterance, or for each row of a CSV, from a trained checkpoint (or an ensemble)."""
    from recognize.checkpoint import atomic_write
    from recognize.ensemble import predict_file_ensemble, predict_utterance_ensemble
    from recognize.predictor import predict_file, predict_utterance
    from recognize.seeds import run_label

    if not ensemble and len(checkpoints) > 1:
        raise RecognizeError(f"CKPT_DIR: {len(checkpoints)} folders given; one, or several with --ensemble")
    checkpoint = checkpoints if ensemble else checkpoints[0]
    predict_rows = predict_file_ensemble if ensemble else predict_file
    predict_one = predict_utterance_ensemble if ensemble else predict_utterance
    if input_file is not None:
        if text is not None or audio is not None or video is not None or context:
            raise RecognizeError("--input: give utterances either in the CSV or with --text/--audio/--video, not both")
        table = predict_rows(checkpoint, input_file, mask_missing=mask_missing, trust_remote_code=trust_remote_code).to_csv(index=False)
        if output is None:
            print(table, end="")
        else:
            atomic_write(output, lambda temp: temp.write_text(table, encoding="utf-8"))
            console.print(escape(f"wrote {output}"), highlight=False)
        return
    if output is not None:
        raise RecognizeError("--output: only with --input (a single utterance's probabilities are printed)")
    probabilities = predict_one(checkpoint, text=text, audio=None if audio is None else str(audio),
                                video=None if video is None else str(video), context=context or [], speaker=speaker,
                                mask_missing=mask_missing, trust_remote_code=trust_remote_code)
    name = f"ensemble of {', '.join(map(run_label, checkpoints))}" if ensemble else run_label(checkpoint)
    title = name + (f": {text!r}" if text is not None else "")
    table = Table(title=escape(title), title_justify="left")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for name, value in sorted(probabilities.items(), key=lambda item: -item[1]):
        table.add_row(name, f"{value:.2%}")
    console.print(table)


CACHE_DIR_HELP = "Feature cache folder (default: $EMOTION_RECOGNIZE_CACHE, else ~/.cache/emotion-recognize)."
cache_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The feature cache of frozen encoders: list, clear, build.")
app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
@_fail_cleanly
def cache_list_command(
    cache_dir: str = typer.Option("", "--cache-dir", help=CACHE_DIR_HELP),
) -> None:
    """List the cache's entries: modality, model, split, rows, width, size, when built."""
    from recognize.cache import list_entries

    root = _cache_folder(cache_dir)
    entries = list_entries(root)
    table = Table(title=escape(f"{root}: {len(entries)} entries, {sum(e['bytes'] for e in entries) / 1e6:.1f} MB"), title_justify="left")
    for column in ("file", "modality", "model", "split", "rows", "width", "MB", "built"):  # wrapped, never cut short:
        table.add_column(column, justify="right" if column in ("rows", "width", "MB") else "left", overflow="fold")  # cache clear takes the names
    for entry in entries:
        if "error" in entry:
            table.add_row(escape(entry["file"]), "", escape(f"unreadable: {entry['error']}"), "", "", "", f"{entry['bytes'] / 1e6:.1f}", "")
            continue
        table.add_row(escape(entry["file"]), entry["modality"], escape(entry["model"]), entry["split"], str(entry["rows"]),
                      str(entry["width"]), f"{entry['bytes'] / 1e6:.1f}", entry["created"])
    console.print(table)


@cache_app.command("clear")
@_fail_cleanly
def cache_clear_command(
    pattern: str = typer.Argument("", metavar="PATTERN", help="Only entries whose file name contains this (see `cache ls`)."),
    every: bool = typer.Option(False, "--all", help="Remove every entry (a video model's entries are the slowest to rebuild)."),
    cache_dir: str = typer.Option("", "--cache-dir", help=CACHE_DIR_HELP),
) -> None:
    """Remove cache entries: those whose name contains PATTERN, or all of them with --all."""
    from recognize.cache import clear_entries

    if bool(pattern) == every:
        raise RecognizeError("cache clear: give a PATTERN (part of the file names `cache ls` shows) or --all, not "
                             + ("both" if every else "neither"))
    root = _cache_folder(cache_dir)
    removed = clear_entries(root, pattern)
    console.print(escape(f"removed {len(removed)} entries from {root}"), highlight=False)


def _cache_folder(cache_dir: str) -> Path:
    """The feature cache's folder; one given with --cache-dir must exist (a mistyped one is
    an error, not an empty cache)."""
    from recognize.cache import cache_root

    root = cache_root(cache_dir)
    if cache_dir and not root.is_dir():
        raise RecognizeError(f"--cache-dir {cache_dir}: no such folder")
    return root


FEATURE_SETTINGS: frozenset[str] = frozenset({
    "modal", "text_model", "audio_model", "video_model", "context", "pooling", "max_length", "max_audio_seconds",
    "cache_dir", "workers", "batch_size", "precision", "compile", "init_from", "init_epoch", "trust_remote_code"})
"""The `train` flags that `cache build` takes: what decides the features, and how fast they are computed."""


def cache_build(command_line: typer.Context, data: str, **settings: Any) -> None:
    """Compute the frozen encoders' features of every split of a MELD folder (train's model
    flags apply: the encoders, their inputs, --init-from for a tuned encoder)."""
    from recognize.builder import build_model, has_split, make_split
    from recognize.init_from import load_source, source_weights

    settings["init_from"] = settings.get("init_from") or []
    if str(settings.get("mode", "")).lower() in ("frozen", "f"):  # what it builds for anyway
        del settings["mode"]
    defaults = ExperimentConfig()
    ignored = [name for name, value in settings.items() if name not in FEATURE_SETTINGS and value != getattr(defaults, name)]
    if ignored:
        flags = ", ".join(cli_flag(name) for name in ignored)
        raise RecognizeError(f"cache build: {flags}: only `train` takes {'it' if len(ignored) == 1 else 'them'} "
                             "(cache build computes the encoders' features, whatever is trained on them)")
    config = ExperimentConfig(data=data, **{**settings, "mode": "frozen", "cache": True})
    check_given_flags(config, given_settings(command_line, settings))
    sources = [load_source(folder, config) for folder in config.init_from]
    built = build_model(config, source_weights(sources))
    for split in ("train", "dev", "test"):
        if has_split(config, split):
            rows = len(make_split(config, built, split).dataset)
            console.print(escape(f"{split}: features of {rows} rows ready ({config.modal})"), highlight=False)


cache_build.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("command_line", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
    inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                      default=typer.Argument("datasets/MELD", metavar="DATA_DIR", help="MELD folder (the three CSVs at its root).")),
    *_config_options(shown=FEATURE_SETTINGS),
])
cache_app.command("build")(_fail_cleanly(cache_build))


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

    if epochs < 1:  # before anything is written
        raise RecognizeError(f"--epochs: must be at least 1, got {epochs}")
    data = write_synthetic_meld(output / "MELD")
    model = write_tiny_bert(output / "tiny-bert", vocabulary(), hidden=64)
    console.print(escape(f"generated a MELD-format folder at {data} and a tiny BERT at {model}"), highlight=False)
    config = ExperimentConfig(data=str(data), text_model=str(model), task="emotion", mode="full", epochs=epochs,
                              batch_size=16, lr=1e-3, warmup=0.1, output_dir=str(output / "checkpoints"))
    folder = run_training(config, overwrite=True)
    _print_summary(folder)
    metrics = evaluate(folder, split="test")
    console.print(metrics_table(escape(f"{folder.name}: test"), metrics))
    console.print(escape(f"the run's files: {folder} (docs/training.md, \"What a run writes\"); next, e.g.:\n"
                         f"  emotion-recognize report {output}\n"
                         f"  emotion-recognize predict \"{folder}\" --text \"wow, I love this apartment\""),
                  highlight=False, soft_wrap=True)


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


def _print_aggregate(path: Path) -> None:
    """Print a seeds aggregate (aggregate.json or a setting folder's eval-*.json): mean ± std per split."""
    from recognize.checkpoint import read_json

    summary = read_json(path)
    for split in ("dev", "test", "scores"):
        if split in summary:
            scores = summary[split]
            cells = "  ".join(f"{name} {100 * scores[key]['mean']:.2f} ± {100 * scores[key]['std']:.2f}"
                              for key, name in (("accuracy", "acc"), ("weighted_f1", "wF1"), ("macro_f1", "macro-F1")))
            label = summary.get("split", split) if split == "scores" else split
            console.print(escape(f"{path.parent.name}, {label}, seeds {summary['seeds']}: {cells}"), highlight=False)
    console.print(escape(f"wrote {path}"), highlight=False)


def main() -> None:
    """Entry point of the `emotion-recognize` console script; a multi-process run leaves its
    process group once the command succeeded (`recognize.process_group`)."""
    from recognize.process_group import leaving_process_group_on_success
    from recognize.quiet import quiet_hugging_face

    quiet_hugging_face()
    with leaving_process_group_on_success():
        app()


if __name__ == "__main__":
    main()
