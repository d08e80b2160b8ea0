"""Classification metrics as MELD papers report them (fractions in [0, 1])."""

import statistics
from typing import Any, Optional, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

SCORES: tuple[str, ...] = ("accuracy", "precision", "recall", "weighted_f1", "macro_f1")
"""The overall scores of `classification_metrics` that results tables, seed aggregates and
cross-validation summaries report, in column order."""


def mean_and_std(values: Sequence[float]) -> tuple[float, Optional[float]]:
    """The mean and sample standard deviation of `values` (None for a single value, which
    has no spread to estimate)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: "list[str] | tuple[str, ...]") -> dict[str, Any]:
    """Accuracy, weighted precision / recall / F1, macro-F1, per-class scores and the
    confusion matrix (rows: true class, columns: predicted, in `labels` order).

    Macro-F1 averages the classes that occur in `y_true` or `y_pred`, as scikit-learn's
    `f1_score(average="macro")` does: a class absent from both (a small cross-validation
    fold without "fear") has no F1 to average, rather than an F1 of 0. On MELD's splits
    every class occurs, and both conventions agree."""
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    weighted = precision_recall_fscore_support(y_true, y_pred, labels=classes, average="weighted", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(weighted[0]),
        "recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)) if len(y_true) else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "samples": int(len(y_true)),
    }
