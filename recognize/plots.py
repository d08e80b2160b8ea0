"""The confusion matrix as a picture (matplotlib): counts beside
row-normalised fractions (each true class's row sums to 1)."""

from pathlib import Path

import numpy as np

from recognize.checkpoint import atomic_write


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a row of a class absent from the split stays 0)."""
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=float), where=totals > 0)


def write_confusion_picture(path: "str | Path", confusion: "list[list[int]]", labels: list[str], title: str) -> None:
    """Write a PNG with two heat maps of `confusion` (rows: true class, columns: predicted):
    the counts, and the row-normalised fractions; each cell carries its number."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = np.asarray(confusion)
    size = 2.0 + 0.75 * len(labels)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    for axis, values, subtitle, text in ((axes[0], counts, "counts", "{:d}"),
                                         (axes[1], row_normalised(counts), "row-normalised", "{:.2f}")):
        image = axis.imshow(values, cmap="Blues")
        figure.colorbar(image, ax=axis, shrink=0.8)
        axis.set_title(f"{title}: {subtitle}")
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axis.set_yticks(range(len(labels)), labels)
        threshold = values.max() / 2 if values.max() > 0 else 1
        for i in range(len(labels)):
            for j in range(len(labels)):
                axis.text(j, i, text.format(values[i, j].item()), ha="center", va="center", fontsize=8,
                          color="white" if values[i, j] > threshold else "black")
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=100))
    plt.close(figure)
