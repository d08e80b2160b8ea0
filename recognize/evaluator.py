"""Rebuild a model from its checkpoint folder alone and evaluate it on a MELD split:
`eval-{split}.json` (metrics), `predictions-{split}.csv` (one row per utterance),
`per-class-{split}.csv` and `confusion-{split}.png`."""

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from recognize import checkpoint as ckpt
from recognize.builder import Built, SplitData, build_model, eval_loader, fusion_for, make_split
from recognize.config import ExperimentConfig
from recognize.dataset.media import clip_name
from recognize.engine import predict_loader, process_state
from recognize.errors import RecognizeError, first_line
from recognize.lineage import record_stages
from recognize.main_process import on_main_process
from recognize.metrics import classification_metrics
from recognize.model.modes import unstored_digest
from recognize.seeds import aggregate, run_label, seed_folders, seed_of


def load_trained(folder: "str | Path", trust_remote_code: bool = False,
                 weights_file: str = ckpt.WEIGHTS) -> tuple[ExperimentConfig, dict[str, Any], Built]:
    """The config, config.json record and model of a checkpoint folder, weights loaded.

    The backbones come from their model ids (as at training time); the folder's
    model.safetensors (or `weights_file`: last.safetensors, the last epoch's) supplies what
    was trained (and what `--init-from` loaded). A run that
    has not finished (no metrics.json) is an error: its weights are the best epoch so far. Model code
    from a repository runs only when this call's `trust_remote_code` allows it, whatever
    the checkpoint's config.json says: a folder someone else wrote must not switch it on."""
    folder = Path(folder)
    config, record = ckpt.read_checkpoint_config(folder)
    config.trust_remote_code = trust_remote_code
    path = folder / weights_file
    if not path.is_file():
        why = ("it was trained without --keep-last" if weights_file == ckpt.LAST_WEIGHTS
               else "training never finished an epoch?")
        raise RecognizeError(f"{folder}: checkpoint has no {weights_file} ({why})")
    ckpt.check_finished(folder)
    fusion_for(config, checkpoint=folder)  # before the backbones load
    weights = ckpt.read_weights(path)
    built = build_model(config, new_run=False)
    try:
        missing, unexpected = built.model.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # shapes that differ: the backbone folder is no longer the one it trained
        reason = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), first_line(error))
        raise RecognizeError(f"{path}: does not fit the model its config.json builds ({reason})") from None
    if unexpected:
        raise RecognizeError(f"{path}: {len(unexpected)} tensors do not fit the model, e.g. {unexpected[0]}")
    recorded = record.get("unstored_weights")  # absent in checkpoints of older versions
    if recorded is not None and unstored_digest(built.model, set(weights)) != recorded:
        backbones = ", ".join(config.model_id(m) for m in config.modalities)
        raise RecognizeError(f"{folder}: the weights it takes from {backbones} (those its model.safetensors does not "
                             "hold) are not the ones it was trained with; the backbone folder or hub model changed")
    changed = [config.model_id(m) for m, digest in record.get("backbone_configs", {}).items()  # absent in older checkpoints
               if built.config_digests.get(m) != digest]
    if changed:
        raise RecognizeError(f"{folder}: the config.json of {', '.join(changed)} is not the one it was trained with "
                             "(its settings changed: the same weights would compute something else)")
    trained = {name for name, p in built.model.named_parameters() if p.requires_grad}
    absent = sorted(trained - set(weights))
    if absent:
        raise RecognizeError(f"{path}: lacks {len(absent)} trained tensors, e.g. {absent[0]}")
    return config, record, built


def evaluate(folder: "str | Path", split: str = "test", data: Optional[str] = None,
             trust_remote_code: bool = False) -> dict[str, Any]:
    """Evaluate the checkpoint in `folder` on `split` of its data folder (or of `data`);
    write `eval-{split}.json` and `predictions-{split}.csv` into the folder; return the metrics."""
    folder = Path(folder)
    config, record, built = load_trained(folder, trust_remote_code)
    if data is not None:
        config.data = data
    data_split = make_split(config, built, split)
    names = record["labels"]
    logits, scores = score(config, built, data_split, names)
    metrics = {"split": split, "data": str(config.data), "training": record_stages(record),
               "initialised_from": [entry["folder"] for entry in record.get("lineage", [])], **scores}
    if data_split.media_report:
        metrics["missing_media"] = data_split.media_report

    def write_evaluation() -> None:
        ckpt.write_json(folder / f"eval-{split}.json", metrics)
        ckpt.write_rows(folder / f"predictions-{split}.csv", prediction_rows(data_split.rows, logits, names, config.task))
        ckpt.write_rows(folder / f"per-class-{split}.csv", [{"class": name, **values} for name, values in metrics["per_class"].items()])
        write_confusion(folder / f"confusion-{split}.png", metrics["confusion"], names, f"{run_label(folder)}, {split}")
    on_main_process(process_state(), write_evaluation)
    return metrics


def write_confusion(path: Path, confusion: "list[list[int]]", names: list[str], title: str) -> None:
    """The confusion picture of an evaluation (matplotlib, imported only when one is drawn)."""
    from recognize.plots import write_confusion_picture

    write_confusion_picture(path, confusion, names, title)


def evaluate_seeds(folder: "str | Path", split: str = "test", data: Optional[str] = None,
                   trust_remote_code: bool = False) -> dict[str, Any]:
    """Evaluate every `seed-{s}` run of a setting folder (`train --seeds`) on `split`; write
    the folder's `eval-{split}.json` (each score's mean, std and values over the seeds) and
    return it with each seed's metrics under "per_seed"."""
    folder = Path(folder)
    members = seed_folders(folder)
    if not members:
        raise RecognizeError(f"{folder}: neither a checkpoint folder nor a setting folder of seed-*/ runs")
    per_seed = {seed_of(m): evaluate(m, split=split, data=data, trust_remote_code=trust_remote_code) for m in members}
    summary = {"split": split, **aggregate(per_seed)}
    # the command line reads that file back on every process
    on_main_process(process_state(), lambda: ckpt.write_json(folder / f"eval-{split}.json", summary))
    return {**summary, "per_seed": per_seed}


def score(config: ExperimentConfig, built: Built, data: SplitData, names: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Logits (row order) and metrics of `built`'s model on a preprocessed split; clips
    that failed to decode when read are added to the split's `media_report`."""
    outputs = predict_loader(built.model, eval_loader(config, built, data.dataset), config.precision)
    report_read_failures(data, outputs.present)
    return outputs.logits, classification_metrics(outputs.labels, outputs.logits.argmax(-1), names)


def report_read_failures(data: SplitData, present: dict[str, np.ndarray]) -> None:
    """Count in `data.media_report` the clips its index found usable but that failed to
    decode when read (their rows were zero-filled, and a warning said so): per modality
    `failed_on_read` and their names among the examples, and the rows zero-filled in all."""
    if not data.indexed:
        return
    names = [clip_name(d, u) for d, u in zip(data.rows["dialogue_id"], data.rows["utterance_id"])]
    absent = np.zeros(len(names), dtype=bool)
    for modality, usable in data.indexed.items():
        failed = [names[i] for i in np.flatnonzero(usable & ~present[modality])]
        report = data.media_report[modality]
        report["failed_on_read"] = len(failed)
        report["examples"] = ([name for name in report["examples"] if name not in failed] + failed)[:20]
        absent |= ~present[modality]
    data.media_report["rows_zero_filled"] = int(absent.sum())


def prediction_rows(rows: pd.DataFrame, logits: np.ndarray, names: list[str], task: str) -> list[dict[str, Any]]:
    """One dict per utterance: ids, speaker, text, true and predicted label, class probabilities."""
    probabilities = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    predicted = probabilities.argmax(-1)
    return [
        {
            "dialogue_id": int(row.dialogue_id),
            "utterance_id": int(row.utterance_id),
            "speaker": row.speaker,
            "text": row.text,
            "label": getattr(row, task),
            "prediction": names[predicted[i]],
            **{f"p_{name}": round(float(probabilities[i, k]), 6) for k, name in enumerate(names)},
        }
        for i, row in enumerate(rows.itertuples(index=False))
    ]
