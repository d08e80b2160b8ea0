"""Results tables from checkpoint folders, in the form MELD papers publish them: one row per
setting (modality, backbones, fusion, task, training stages), its scores on a split in
percent, as mean +- sample standard deviation over the setting's seeds with their count.

A folder under the scanned root is a run when it holds config.json; a Hugging Face model
folder (its config.json has a `model_type`) is passed over in silence, and one that cannot be
read as a finished run (no metrics.json yet, a foreign config.json, broken JSON, no
scores for the split) is skipped with a warning, never a crash. Runs on other data (other
CSVs, e.g. cross-validation folds) are other settings; a seed found in several folders of one
setting (copies of a run) counts once, from the first folder in sorted order; the others are
skipped with a warning. Rows that the setting columns alone would show alike (runs that differ
in `--context`, a learning rate, or their data) get an "other settings" column naming what
tells them apart.

An ensemble that `eval --ensemble` scored on the split (its folder's `eval-{split}.json`, beside
no config.json) is a row of its own when its members are runs found under the root: their
setting columns, "ensemble of N" after the training stages, n 1 (one model's scores)."""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from recognize.checkpoint import CONFIG, METRICS
from recognize.config import RESULT_NEUTRAL, ExperimentConfig, backbone_name, cli_flag
from recognize.errors import RecognizeError
from recognize.lineage import record_stages
from recognize.metrics import SCORES, mean_and_std

SCORE_TITLES: dict[str, str] = {"accuracy": "accuracy", "precision": "precision", "recall": "recall",
                                "weighted_f1": "weighted-F1", "macro_f1": "macro-F1"}

SETTING_COLUMNS: tuple[str, ...] = ("modality", "backbones", "fusion", "task", "training")

OTHER_SETTINGS = "other settings"
"""The column, shown only when needed, that tells apart rows whose setting columns are equal."""

NOT_SETTING: frozenset[str] = RESULT_NEUTRAL | {"seed", "seed_folder", "output_dir", "init_from", "init_epoch", "teacher", "data"}
"""Config fields that differ between the seeds of one setting, or do not change results (the
stages of `init_from` and `teacher` runs, and the `init_epoch` they started from, stay in the
training column)."""


@dataclass
class Run:
    """A finished run: its folder, config.json record and scores on the reported split."""

    folder: Path
    record: dict[str, Any]
    scores: dict[str, float]

    @property
    def experiment(self) -> dict[str, Any]:
        """The run's ExperimentConfig fields."""
        return self.record["experiment"]

    def setting(self) -> dict[str, str]:
        """The columns that identify its setting."""
        config = ExperimentConfig.from_dict(self.experiment)
        return {
            "modality": config.modal,
            "backbones": "+".join(backbone_name(config.model_id(m)) for m in config.modalities),
            "fusion": config.fusion.upper() if len(config.modalities) > 1 else "",
            "task": config.task,
            "training": record_stages(self.record),
        }

    def setting_fields(self) -> dict[str, Any]:
        """The config values that make its setting: every field but those of NOT_SETTING, the
        learning rates as used (a default `--lr` is the mode's; `--head-lr` only where it is not
        `--lr`), the precision as used (`auto` is bf16 on one machine, fp32 on another; a run
        written before config.json recorded it keeps the value asked for), and "data", its
        CSVs' fingerprint (the same CSVs under any path are the same data). A field added after the run
        was written counts as its default."""
        config = ExperimentConfig.from_dict(self.experiment)
        fields = {k: v for k, v in config.to_dict().items() if k not in NOT_SETTING}  # a field config.json predates: its default
        head_rate = config.head_learning_rate  # the head's own rate only where it differs from the backbones'
        fields.update(lr=config.learning_rate, head_lr=head_rate if head_rate != config.learning_rate else None,
                      precision=self.record.get("resolved_precision", config.precision))
        return {**fields, "data": self.record.get("data_fingerprint")}

    def setting_key(self) -> str:
        """Equal for runs that differ only in seed (and where they were written): the same
        CSVs under any path count as the same data (config.json's data fingerprint), so runs
        on other data, such as cross-validation folds, are settings of their own."""
        return json.dumps([self.setting_fields(), record_stages(self.record)], sort_keys=True)


@dataclass
class Row:
    """One setting: its columns and every seed's scores."""

    setting: dict[str, str]
    fields: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    seeds: list[int] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCORES})
    ensemble_of: int = 0
    """For an ensemble's row, its number of members (its training column ends ", ensemble of N")."""
    key: str = ""
    """Its setting's `Run.setting_key` (an ensemble's: its members', "" where they differ)."""

    @property
    def count(self) -> int:
        """How many scores the row's means are over: its seeds, or 1 for an ensemble."""
        return len(self.scores["accuracy"])

    def mean(self, score: str) -> float:
        """Mean of `score` over the seeds, in percent."""
        return 100 * mean_and_std(self.scores[score])[0]

    def std(self, score: str) -> Optional[float]:
        """Sample standard deviation of `score` over the seeds, in percent (None for one seed)."""
        std = mean_and_std(self.scores[score])[1]
        return None if std is None else 100 * std


def find_runs(root: "str | Path", split: str = "test", warn: Callable[[str], None] = print) -> list[Run]:
    """Every finished run under `root` (recursively) with scores on `split`: metrics.json's
    for train/dev/test where present, else the folder's eval-{split}.json. Others are
    reported through `warn` and skipped."""
    runs = []
    for folder in run_folders(root):
        if _is_model_folder(folder):
            continue  # a backbone saved beside the runs (the demo's tiny BERT, a local copy of a hub model)
        try:
            run = _read_run(folder, split)
        except (RecognizeError, KeyError, TypeError, ValueError) as error:
            warn(f"skipped {folder}: {error}")
            continue
        runs.append(run)
    return runs


def run_folders(root: "str | Path") -> list[Path]:
    """Every folder under `root` (recursively, in sorted order) holding a config.json,
    finished or not; RecognizeError when `root` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise RecognizeError(f"{root}: no such folder")
    return [config_file.parent for config_file in sorted(root.rglob(CONFIG))]


def _is_model_folder(folder: Path) -> bool:
    """Whether `folder`'s config.json is a Hugging Face model's (a `model_type`, no `experiment`)."""
    try:
        record = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and "model_type" in record and "experiment" not in record


def _read_run(folder: Path, split: str) -> Run:
    """The Run in `folder`, or an exception saying why it is not one."""
    record = _json(folder / CONFIG)
    if not isinstance(record, dict) or "experiment" not in record:
        raise RecognizeError(f"{CONFIG} has no 'experiment' section; not written by emotion-recognize")
    ExperimentConfig.from_dict(record["experiment"])  # a config this version cannot read is foreign too
    if not (folder / METRICS).is_file():
        raise RecognizeError(f"no {METRICS}: the run has not finished")
    metrics = _json(folder / METRICS)
    if not isinstance(metrics, dict):
        raise RecognizeError(f"{METRICS} is not a JSON object")
    scores = metrics.get(split)
    evaluation = folder / f"eval-{split}.json"
    if scores is None and evaluation.is_file():
        scores = _json(evaluation)
    if scores is None:
        raise RecognizeError(f"no {split} scores (run `emotion-recognize eval {folder} --split {split}`)")
    return Run(folder, record, {k: float(scores[k]) for k in SCORES})


def _json(path: Path) -> Any:
    """A JSON file's content, or RecognizeError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RecognizeError(f"{path.name}: {error}") from None


def group_runs(runs: list[Run], warn: Callable[[str], None] = print) -> list[Row]:
    """One Row per setting, seeds in ascending order, settings in the order first seen. A
    seed found in several folders of one setting (copies of a run) counts once: the first
    folder in sorted order is kept, the others are reported through `warn`."""
    rows: dict[str, Row] = {}
    kept: dict[tuple[str, int], Path] = {}
    copies: dict[tuple[str, int], list[Path]] = {}
    for run in sorted(runs, key=lambda r: (r.experiment["seed"], r.folder)):
        key = (run.setting_key(), run.experiment["seed"])
        if key in kept:
            copies.setdefault(key, []).append(run.folder)
            continue
        kept[key] = run.folder
        row = rows.setdefault(key[0], Row(run.setting(), run.setting_fields(), run.experiment["data"], key=key[0]))
        row.seeds.append(run.experiment["seed"])
        for score in SCORES:
            row.scores[score].append(run.scores[score])
    for key, folders in copies.items():
        warn(f"skipped {', '.join(map(str, folders))}: seed {key[1]} of this setting is already counted from "
             f"{kept[key]} (a seed counts once: its first folder in sorted order)")
    return list(rows.values())


def ensemble_rows(root: "str | Path", runs: list[Run], split: str = "test",
                  warn: Callable[[str], None] = print) -> list[Row]:
    """One Row per ensemble scored on `split` under `root` whose members (as `eval --ensemble`
    recorded them: absolute, or relative to the working folder) are all among `runs`; an
    ensemble with a member not found is reported through `warn` and skipped."""
    found = {run.folder.resolve(): run for run in runs}
    rows = []
    for path in sorted(Path(root).rglob(f"eval-{split}.json")):
        if (path.parent / CONFIG).is_file():
            continue  # a run's own evaluation
        try:
            record = _json(path)
        except RecognizeError as error:
            warn(f"skipped {path.parent}: {error}")
            continue
        if not (isinstance(record, dict) and isinstance(record.get("members"), list) and record["members"]):
            continue  # not an ensemble's evaluation
        members = [found.get(Path(member).resolve()) for member in record["members"]]
        if None in members:
            missing = record["members"][members.index(None)]
            warn(f"skipped ensemble {path.parent}: its member {missing} is not a finished run under {root}")
            continue
        rows.append(_ensemble_row(members, {k: float(record[k]) for k in SCORES}))
    return rows


def _ensemble_row(members: list[Run], scores: dict[str, float]) -> Row:
    """The row of an ensemble of `members` with its `scores`: each setting column the members'
    value, or their distinct values joined by " / " where they differ."""
    columns = [member.setting() for member in members]
    setting = {column: " / ".join(dict.fromkeys(c[column] for c in columns)) for column in SETTING_COLUMNS}
    setting["training"] += f", ensemble of {len(members)}"  # as _default_order reads it
    keys = {member.setting_key() for member in members}
    key = keys.pop() if len(keys) == 1 else ""
    fields = members[0].setting_fields() if key else {}
    return Row(setting, fields, members[0].experiment["data"], [m.experiment["seed"] for m in members],
               {score: [value] for score, value in scores.items()}, ensemble_of=len(members), key=key)


def _default_order(rows: list[Row]) -> list[Row]:
    """`rows` by modality, backbones and training stages (settings of equal columns in the
    order given), an ensemble right after its members' setting, or after every row of its
    members' stages where they are of several settings."""
    position = {row.key: index for index, row in enumerate(rows) if not row.ensemble_of}

    def order(row: Row) -> tuple[str, str, str, int, int]:
        suffix = f", ensemble of {row.ensemble_of}" if row.ensemble_of else ""
        stages = row.setting["training"].removesuffix(suffix)
        return (row.setting["modality"], row.setting["backbones"], stages, position.get(row.key, len(rows)), row.ensemble_of)
    return sorted(rows, key=order)


def select_rows(rows: list[Row], modal: Optional[str] = None, task: Optional[str] = None,
                sort: Optional[str] = None) -> list[Row]:
    """Rows of one modality combination and/or task, sorted by a setting column (ascending)
    or a score (best first); by default by modality, backbones, training (an ensemble right
    after its members' setting)."""
    if modal is not None:
        rows = [r for r in rows if r.setting["modality"] == ExperimentConfig(modal=modal).modal]
    if task is not None:
        rows = [r for r in rows if r.setting["task"] == ExperimentConfig(task=task).task]
    if sort is None:
        return _default_order(rows)
    if sort in SCORES:
        return sorted(rows, key=lambda r: -r.mean(sort))
    if sort in SETTING_COLUMNS:
        return sorted(rows, key=lambda r: r.setting[sort])
    raise RecognizeError(f"--sort: unknown column '{sort}'; valid: {', '.join(SETTING_COLUMNS + SCORES)}")


def other_settings(rows: list[Row]) -> list[str]:
    """Per row, what tells it apart from the rows whose setting columns are equal to its own:
    the flags whose values differ among them, with its value (`--context 1, --lr 0.0001`;
    `data fold-3/data` for other CSVs, by the data folder's last two components); "" for a
    row that its setting columns already tell apart."""
    alike: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        alike.setdefault(tuple(row.setting[c] for c in SETTING_COLUMNS), []).append(row)
    notes = {}
    for group in alike.values():
        names = list(dict.fromkeys(name for row in group for name in row.fields))
        differing = [name for name in names
                     if len({json.dumps(row.fields.get(name), sort_keys=True) for row in group}) > 1]
        for row in group:
            notes[id(row)] = ", ".join(_describe(name, row) for name in differing)
    return [notes[id(row)] for row in rows]


def _describe(name: str, row: Row) -> str:
    """`name`'s value in `row` as a flag and its value, or the data folder for "data"."""
    if name == "data":
        return "data " + "/".join(Path(row.data).parts[-2:])
    value = row.fields.get(name)
    return f"{cli_flag(name)} {'default' if value is None else value}"


def _setting_header(notes: list[str]) -> list[str]:
    """The setting columns' titles, with OTHER_SETTINGS when a row needs it."""
    return [*SETTING_COLUMNS, *([OTHER_SETTINGS] if any(notes) else [])]


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, scores "mean ± std" in percent with two decimals."""
    notes = other_settings(rows)
    header = [*_setting_header(notes), "n", *(SCORE_TITLES[s] for s in SCORES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, note in zip(rows, notes):
        cells = [row.setting[c] for c in SETTING_COLUMNS] + ([note] if any(notes) else []) + [str(row.count)]
        for score in SCORES:
            std = row.std(score)
            cells.append(f"{row.mean(score):.2f}" + (f" ± {std:.2f}" if std is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[Row]) -> str:
    """The rows as CSV: the setting columns (OTHER_SETTINGS when needed), n, the seeds, and each
    score's mean and std."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    notes = other_settings(rows)
    writer.writerow([*_setting_header(notes), "n", "seeds", *(f"{s}_{stat}" for s in SCORES for stat in ("mean", "std"))])
    for row, note in zip(rows, notes):
        values = []
        for score in SCORES:
            std = row.std(score)
            values += [f"{row.mean(score):.2f}", "" if std is None else f"{std:.2f}"]
        writer.writerow([*(row.setting[c] for c in SETTING_COLUMNS), *([note] if any(notes) else []), row.count,
                         " ".join(str(s) for s in row.seeds), *values])
    return out.getvalue()


FORMATS: dict[str, Callable[[list[Row]], str]] = {"markdown": markdown_table, "csv": csv_table}
"""`--format` name -> table writer."""
