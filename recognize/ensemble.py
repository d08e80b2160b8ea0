"""An ensemble of trained checkpoints: the mean of their class probabilities (soft voting).

Members are checkpoint folders, or setting folders of `train --seeds` (each of their
`seed-{s}` runs is a member); all predict one label type. `eval --ensemble` evaluates each
member on the split (its own eval files, as `eval` writes them), averages the members'
probabilities from their `predictions-{split}.csv`, matched by dialogue and utterance id,
and writes the ensemble's `eval-{split}.json`, `predictions-{split}.csv`,
`per-class-{split}.csv` and `confusion-{split}.png` into a folder of its own.
`predict --ensemble` averages the members' probabilities for new utterances."""

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from recognize import checkpoint as ckpt
from recognize.engine import process_state
from recognize.errors import RecognizeError
from recognize.main_process import on_main_process
from recognize.metrics import classification_metrics
from recognize.seeds import run_label, seed_folders

ENSEMBLE_FOLDER = "ensemble"
"""Where `eval --ensemble` of one setting folder writes the ensemble's files, inside it."""
KEYS = ["dialogue_id", "utterance_id"]


def ensemble_members(paths: list[Path]) -> list[Path]:
    """The checkpoint folders of the ensemble `paths` name (a setting folder: its seeds), in
    order; RecognizeError when fewer than two, one is named twice, or their label types differ."""
    members: list[Path] = []
    for path in paths:
        if not (path / ckpt.CONFIG).is_file() and seed_folders(path):
            members += seed_folders(path)
        else:
            ckpt.read_checkpoint_config(path)  # a one-line error for a folder that is not a checkpoint
            members.append(path)
    resolved = [m.resolve() for m in members]
    repeated = next((m for i, m in enumerate(members) if resolved[i] in resolved[:i]), None)
    if repeated is not None:
        raise RecognizeError(f"--ensemble: {repeated} is named twice")
    if len(members) < 2:
        raise RecognizeError(f"--ensemble: needs two or more checkpoints, got {len(members)} ({', '.join(map(str, paths))})")
    tasks = {m: ckpt.read_checkpoint_config(m)[0].task for m in members}
    if len(set(tasks.values())) > 1:
        other = next(m for m in members if tasks[m] != tasks[members[0]])
        raise RecognizeError(f"--ensemble: {members[0]} predicts {tasks[members[0]]}, {other} {tasks[other]}; "
                             "an ensemble's members predict one label type")
    return members


def default_output(paths: list[Path]) -> Path:
    """Where the ensemble's files go when no --output-dir is given: `{setting}/ensemble` for
    one setting folder; RecognizeError otherwise (several folders have no one home)."""
    if len(paths) == 1 and not (paths[0] / ckpt.CONFIG).is_file():
        return paths[0] / ENSEMBLE_FOLDER
    raise RecognizeError("--output-dir: required with --ensemble of several folders (where the ensemble's files go)")


def average_predictions(tables: list[pd.DataFrame], names: list[str], members: list[Path], split: str) -> pd.DataFrame:
    """The first member's rows with each `p_{class}` the mean over `tables` (matched by
    dialogue and utterance id) and `prediction` the most probable class; RecognizeError
    when a member was evaluated on other rows or labels."""
    columns = [f"p_{name}" for name in names]
    base = tables[0].set_index(KEYS)
    total = base[columns].to_numpy(dtype=float)
    for member, table in zip(members[1:], tables[1:]):
        other = table.set_index(KEYS)
        if len(other) != len(base) or not other.index.sort_values().equals(base.index.sort_values()):
            raise RecognizeError(f"--ensemble: {member} was evaluated on other {split} rows than {members[0]}")
        other = other.loc[base.index]
        if not (other["label"] == base["label"]).all():
            raise RecognizeError(f"--ensemble: {member} has other {split} labels than {members[0]}")
        total += other[columns].to_numpy(dtype=float)
    out = base.reset_index()
    mean = total / len(tables)
    out[columns] = mean.round(6)
    out["prediction"] = [names[k] for k in mean.argmax(-1)]
    return out


def evaluate_ensemble(paths: list[Path], split: str = "test", data: Optional[str] = None,
                      output_dir: Optional[Path] = None, trust_remote_code: bool = False,
                      on_member: Callable[[Path, dict[str, Any]], None] = lambda folder, metrics: None) -> dict[str, Any]:
    """Evaluate each member of the ensemble `paths` on `split` (of `data`, else the first
    member's data folder), call `on_member` with each one's metrics, then write the
    ensemble's eval files into `output_dir` (default: `default_output`); return its metrics."""
    from recognize.evaluator import evaluate, write_confusion

    members = ensemble_members(paths)
    output_dir = output_dir if output_dir is not None else default_output(paths)
    if (output_dir / ckpt.CONFIG).is_file():
        raise RecognizeError(f"--output-dir {output_dir}: is a checkpoint folder; its eval files would be replaced")
    names = ckpt.read_checkpoint_config(members[0])[1]["labels"]
    tables = []
    for member in members:
        metrics = evaluate(member, split=split, data=data, trust_remote_code=trust_remote_code)
        data = metrics["data"]  # every member on the same rows
        on_member(member, metrics)
        tables.append(pd.read_csv(member / f"predictions-{split}.csv", dtype={"label": str, "prediction": str, "text": str,
                                                                            "speaker": str}, keep_default_na=False))
    predictions = average_predictions(tables, names, members, split)
    index = {name: k for k, name in enumerate(names)}
    scores = classification_metrics(predictions["label"].map(index).to_numpy(dtype=int),
                                    predictions["prediction"].map(index).to_numpy(dtype=int), names)
    metrics = {"split": split, "data": str(data), "training": f"ensemble of {len(members)}",
               "members": [str(m) for m in members], **scores}

    def write_evaluation() -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(output_dir / f"eval-{split}.json", metrics)
        ckpt.write_rows(output_dir / f"predictions-{split}.csv", predictions.to_dict("records"))
        ckpt.write_rows(output_dir / f"per-class-{split}.csv", [{"class": n, **v} for n, v in metrics["per_class"].items()])
        write_confusion(output_dir / f"confusion-{split}.png", metrics["confusion"], names,
                        f"ensemble of {len(members)} ({run_label(members[0])}, ...), {split}")
    on_main_process(process_state(), write_evaluation)
    return metrics


def predict_utterance_ensemble(paths: list[Path], **inputs: Any) -> dict[str, float]:
    """Class name -> the mean over the ensemble's members of `predict_utterance(member, **inputs)`."""
    from recognize.predictor import predict_utterance

    each = [predict_utterance(member, **inputs) for member in ensemble_members(paths)]
    return {name: float(np.mean([probabilities[name] for probabilities in each])) for name in each[0]}


def predict_file_ensemble(paths: list[Path], input_file: Path, **options: Any) -> pd.DataFrame:
    """`predict_file`'s table, with each `p_{class}` the mean over the ensemble's members and
    `prediction` the most probable class of that mean."""
    from recognize.predictor import predict_file

    members = ensemble_members(paths)
    names = ckpt.read_checkpoint_config(members[0])[1]["labels"]
    tables = [predict_file(member, input_file, **options) for member in members]
    columns = [f"p_{name}" for name in names]
    mean = np.mean([table[columns].to_numpy(dtype=float) for table in tables], axis=0)
    out = tables[0].copy()
    out[columns] = mean.round(6)
    out["prediction"] = [names[k] for k in mean.argmax(-1)]
    return out
