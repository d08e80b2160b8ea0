"""The summaries written over several runs, number for number and in key order, on made-up
scores (no training): a setting's aggregate.json over its seeds and cross-validation.json
over its folds."""

import json
from pathlib import Path

from recognize import ExperimentConfig
from recognize import checkpoint as ckpt
from recognize import crossval
from recognize.dataset.meld import csv_path, read_raw_csv
from recognize.dataset.synthetic import write_synthetic_meld
from recognize.metrics import SCORES
from recognize.seeds import aggregate

CENTRES: dict[str, float] = {"accuracy": 0.5, "precision": 0.625, "recall": 0.375, "weighted_f1": 0.75, "macro_f1": 0.25}
"""Each score's middle value; the three runs lie at it and 0.125 either side (binary
fractions, so means and sample standard deviations are exact: mean CENTRES, std 0.125)."""
STEP = 0.125


def run_scores(offset: int) -> dict[str, float]:
    """One run's overall scores, `offset` steps from CENTRES, with the per-class entries
    metrics.json also holds (which summaries leave out)."""
    return {**{score: CENTRES[score] + offset * STEP for score in SCORES}, "per_class": {}, "samples": 10}


def test_aggregate_gives_each_score_mean_sample_std_and_values_per_split():
    per_seed = {seed: {"dev": run_scores(offset), "test": run_scores(-offset)} for seed, offset in ((1, -1), (2, 0), (3, 1))}
    expected = {"seeds": [1, 2, 3]}
    for split, sign in (("dev", 1), ("test", -1)):
        expected[split] = {score: {"mean": CENTRES[score], "std": STEP,
                                   "values": [CENTRES[score] + sign * offset * STEP for offset in (-1, 0, 1)]}
                           for score in SCORES}
    assert json.dumps(aggregate(per_seed)) == json.dumps(expected)


def test_aggregate_of_one_seed_has_std_zero_and_bare_metrics_go_under_scores():
    single = aggregate({7: {"dev": run_scores(0), "test": run_scores(1)}})
    assert single["test"]["weighted_f1"] == {"mean": 0.875, "std": 0.0, "values": [0.875]}
    bare = aggregate({1: run_scores(1), 2: run_scores(-1)})
    assert list(bare) == ["seeds", "scores"]
    assert json.dumps(bare["scores"]["accuracy"]) == json.dumps({"mean": 0.5, "std": 0.1767766952966369, "values": [0.625, 0.375]})


def test_cross_validation_json_holds_each_fold_then_each_score_mean_and_std(tmp_path, monkeypatch):
    data = write_synthetic_meld(tmp_path / "MELD", dialogues={"train": 2, "dev": 9, "test": 2})

    def train_stub(config: ExperimentConfig) -> Path:
        """Write fold i's made-up test scores where a run would, instead of training."""
        fold = int(Path(config.output_dir).name.removeprefix("fold-"))
        folder = Path(config.output_dir) / config.run_name
        ckpt.write_json(folder / ckpt.METRICS, {"test": run_scores(fold - 1)})
        return folder

    monkeypatch.setattr(crossval, "train", train_stub)
    config = ExperimentConfig(data=str(data), output_dir=str(tmp_path / "cv"))
    summary = crossval.cross_validate(config, split="dev", folds=3)

    rows = [len(part) for part in crossval.dialogue_folds(read_raw_csv(csv_path(data, "dev"))["Dialogue_ID"], 3, seed=config.seed)]
    expected = {
        "split": "dev", "folds": 3, "data": str(data), "run_name": config.run_name,
        "per_fold": [{"fold": i, "rows": rows[i], **{s: CENTRES[s] + (i - 1) * STEP for s in SCORES}} for i in range(3)],
        **{score: {"mean": CENTRES[score], "std": STEP} for score in SCORES},
    }
    written = (tmp_path / "cv" / "cv-dev-3" / crossval.SUMMARY).read_text(encoding="utf-8")
    assert written == json.dumps(expected, indent=2) + "\n"
    assert summary == expected
