"""Two models on the same rows: a paired bootstrap confidence interval for the difference of
their weighted-F1 (resampling utterances with replacement, both models' predictions on the
same resampled rows each time)."""

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
    y_true, pred_a, pred_b = (np.asarray(a) for a in (y_true, pred_a, pred_b))
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("the two models' predictions must be on the same rows")
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for k in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        differences[k] = weighted_f1(y_true[rows], pred_a[rows], classes) - weighted_f1(y_true[rows], pred_b[rows], classes)
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return {"difference": weighted_f1(y_true, pred_a, classes) - weighted_f1(y_true, pred_b, classes),
            "low": float(low), "high": float(high), "confidence": confidence, "resamples": resamples}


def compare_predictions(folder_a: "str | Path", folder_b: "str | Path", split: str, names: list[str],
                        resamples: int = 1000) -> dict[str, Any]:
    """`paired_bootstrap` of two evaluated checkpoints, from their `predictions-{split}.csv`,
    matched by dialogue and utterance id; RecognizeError when the rows differ."""
    tables = [pd.read_csv(Path(f) / f"predictions-{split}.csv", dtype={"label": str, "prediction": str}, keep_default_na=False)
              for f in (folder_a, folder_b)]
    keys = ["dialogue_id", "utterance_id"]
    merged = tables[0].merge(tables[1], on=keys, suffixes=("_a", "_b"), validate="one_to_one")
    if not len(merged) == len(tables[0]) == len(tables[1]) or not (merged["label_a"] == merged["label_b"]).all():
        raise RecognizeError(f"--compare: {folder_a} and {folder_b} were evaluated on different {split} rows or labels")
    index = {name: i for i, name in enumerate(names)}
    try:
        y_true, pred_a, pred_b = (merged[c].map(index).to_numpy(dtype=int) for c in ("label_a", "prediction_a", "prediction_b"))
    except (ValueError, TypeError):
        raise RecognizeError("--compare: the two checkpoints predict different label sets (one emotion, one sentiment?)") from None
    return paired_bootstrap(y_true, pred_a, pred_b, len(names), resamples=resamples)
