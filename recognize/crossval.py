"""K-fold cross-validation over the dialogues of one MELD split (as the research scored its
ViViT classifier: 10 folds of the dev split). No dialogue is ever split across folds.

Fold i is tested on the dialogues of fold i; fold (i + 1) mod K picks the best epoch (the
run's dev split); the other K - 2 folds train. Each fold is a MELD folder of its own under
`{output_dir}/cv-{split}-{K}/fold-{i}/data`: its three CSVs hold the split's original rows
(unrepaired, as in the source file) and its audios/ and videos/ split folders link to the
source split's, so clips are found by their usual names."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recognize import checkpoint as ckpt
from recognize.config import ExperimentConfig
from recognize.dataset.media import MEDIA_FOLDER
from recognize.dataset.meld import SPLITS, csv_path, existing_csv, read_raw_csv
from recognize.dataset.prepare import link_to
from recognize.errors import RecognizeError
from recognize.metrics import SCORES, mean_and_std
from recognize.run import train

SUMMARY = "cross-validation.json"
MIN_FOLDS = 3
"""The fewest folds that leave one to train on: fold i tests, fold i + 1 picks the best epoch."""


def dialogue_folds(dialogue_ids: "list[str] | pd.Series", folds: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of each of `folds` folds: the dialogues shuffled (seeded), then each one
    given whole to the fold with the fewest rows so far, so folds are about equal in rows.
    RecognizeError unless `folds` lies between MIN_FOLDS and the number of dialogues."""
    ids = pd.Series(list(dialogue_ids)).astype(str)
    dialogues = ids.unique()
    if not MIN_FOLDS <= folds <= len(dialogues):
        raise RecognizeError(f"--folds: cross-validation needs at least {MIN_FOLDS} (a fold tests, the next picks the best "
                             f"epoch, the rest train) and at most the split's {len(dialogues)} dialogues, got {folds}")
    order = np.random.default_rng(seed).permutation(len(dialogues))
    sizes = ids.value_counts()
    members: list[list[str]] = [[] for _ in range(folds)]
    rows = np.zeros(folds, dtype=int)
    for index in order:
        dialogue = dialogues[index]
        target = int(np.argmin(rows))
        members[target].append(dialogue)
        rows[target] += sizes[dialogue]
    return [np.flatnonzero(ids.isin(group).to_numpy()) for group in members]


def write_fold(source: Path, split: str, raw: pd.DataFrame, parts: dict[str, np.ndarray], folder: Path) -> Path:
    """A MELD folder whose train/dev/test CSVs hold the `raw` rows of `parts` and whose media
    split folders link to `source`'s `split` folders."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in parts.items():
        table = raw.iloc[np.sort(rows)]
        ckpt.atomic_write(csv_path(folder, part), lambda temp, table=table: table.to_csv(temp, index=False))
    for media, _ in MEDIA_FOLDER.values():
        origin = source / media / split
        if origin.is_dir():
            for part in SPLITS:
                (folder / media).mkdir(exist_ok=True)
                link_to(origin, folder / media / part)  # re-pointed when an earlier run linked another data folder
    return folder


def cross_validate(config: ExperimentConfig, split: str = "dev", folds: int = 10) -> dict[str, Any]:
    """Train and test `config` on each fold of `split`; write and return the summary: each
    fold's test scores and their mean and sample standard deviation."""
    source = Path(config.data)
    path = existing_csv(source, split)
    raw = read_raw_csv(path)
    if "Dialogue_ID" not in raw.columns:
        raise RecognizeError(f"{path}: missing column Dialogue_ID")
    fold_rows = dialogue_folds(raw["Dialogue_ID"], folds, seed=config.seed)
    root = Path(config.output_dir) / f"cv-{split}-{folds}"
    results = []
    for i in range(folds):
        validation = (i + 1) % folds
        parts = {"test": fold_rows[i], "dev": fold_rows[validation],
                 "train": np.concatenate([rows for k, rows in enumerate(fold_rows) if k not in (i, validation)])}
        data = write_fold(source, split, raw, parts, root / f"fold-{i}" / "data")
        run = ExperimentConfig.from_dict({**config.to_dict(), "data": str(data), "output_dir": str(root / f"fold-{i}"),
                                          "seed_folder": False})
        metrics = ckpt.read_json(train(run) / ckpt.METRICS)
        results.append({"fold": i, "rows": len(fold_rows[i]), **{k: metrics["test"][k] for k in SCORES}})
    spread = {k: mean_and_std([r[k] for r in results]) for k in SCORES}
    summary = {
        "split": split, "folds": folds, "data": str(source), "run_name": config.run_name, "per_fold": results,
        **{k: {"mean": mean, "std": std} for k, (mean, std) in spread.items()},
    }
    ckpt.write_json(root / SUMMARY, summary)
    return summary
