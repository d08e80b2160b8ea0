"""Two models on the same rows: a paired bootstrap confidence interval for the difference of
their weighted-F1 (resampling utterances with replacement, both models' predictions on the
same resampled rows each time). Two settings of several seeds each: the same for the
difference of their mean weighted-F1 over the seeds, every seed's predictions on the same
resampled rows."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from recognize.errors import RecognizeError


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> float:
    """Weighted-F1 over `classes` class indices (a class absent from both counts 0)."""
    return float(f1_score(y_true, y_pred, labels=list(range(classes)), average="weighted", zero_division=0))


def paired_bootstrap(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, classes: int,
                     resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Weighted-F1 of A minus B on the rows as given, and the percentile interval of that
    difference over `resamples` bootstrap resamples of the rows (seeded: repeatable)."""
    return seed_bootstrap(y_true, [pred_a], [pred_b], classes, resamples, confidence, seed)


def seed_bootstrap(y_true: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray], classes: int,
                   resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The mean weighted-F1 over A's seeds minus that over B's, on the rows as given, and the
    percentile interval of that difference over `resamples` bootstrap resamples of the rows,
    each resample scoring every seed's predictions on the same rows (seeded: repeatable)."""
    y_true = np.asarray(y_true)
    preds_a, preds_b = [np.asarray(p) for p in preds_a], [np.asarray(p) for p in preds_b]
    if any(len(p) != len(y_true) for p in (*preds_a, *preds_b)):
        raise ValueError("the two models' predictions must be on the same rows")

    def difference(rows: "np.ndarray | slice") -> float:
        mean_a = np.mean([weighted_f1(y_true[rows], p[rows], classes) for p in preds_a])
        mean_b = np.mean([weighted_f1(y_true[rows], p[rows], classes) for p in preds_b])
        return float(mean_a - mean_b)

    rng = np.random.default_rng(seed)
    differences = np.array([difference(rng.integers(0, len(y_true), len(y_true))) for _ in range(resamples)])
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return {"difference": difference(slice(None)), "low": float(low), "high": float(high),
            "confidence": confidence, "resamples": resamples}


def compare_predictions(folder_a: "str | Path", folder_b: "str | Path", split: str, names: list[str],
                        resamples: int = 1000) -> dict[str, Any]:
    """`paired_bootstrap` of two evaluated checkpoints, from their `predictions-{split}.csv`,
    matched by dialogue and utterance id; RecognizeError when the rows differ."""
    return compare_seed_predictions([folder_a], [folder_b], split, names, resamples)


def compare_seed_predictions(folders_a: "list[str | Path]", folders_b: "list[str | Path]", split: str, names: list[str],
                             resamples: int = 1000) -> dict[str, Any]:
    """`seed_bootstrap` of two groups of evaluated checkpoints (the seeds of two settings),
    from their `predictions-{split}.csv`, matched by dialogue and utterance id to the first
    one's rows; RecognizeError when any member's rows or labels differ."""
    folders = [*folders_a, *folders_b]
    tables = [pd.read_csv(Path(f) / f"predictions-{split}.csv", dtype={"label": str, "prediction": str}, keep_default_na=False)
              .set_index(["dialogue_id", "utterance_id"]) for f in folders]
    base = tables[0]
    index = {name: i for i, name in enumerate(names)}
    predictions = []
    for folder, table in zip(folders, tables):
        if len(table) != len(base) or not table.index.sort_values().equals(base.index.sort_values()):
            raise RecognizeError(f"--compare: {folders[0]} and {folder} were evaluated on different {split} rows or labels")
        table = table.loc[base.index]
        if not (table["label"] == base["label"]).all():
            raise RecognizeError(f"--compare: {folders[0]} and {folder} were evaluated on different {split} rows or labels")
        try:
            predictions.append(table["prediction"].map(index).to_numpy(dtype=int))
        except (ValueError, TypeError):
            raise RecognizeError("--compare: the two checkpoints predict different label sets (one emotion, one sentiment?)") from None
    y_true = base["label"].map(index).to_numpy(dtype=int)
    return seed_bootstrap(y_true, predictions[:len(folders_a)], predictions[len(folders_a):], len(names), resamples=resamples)
