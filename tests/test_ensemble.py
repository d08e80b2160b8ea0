"""Ensembles of seed runs: `eval --ensemble` and `predict --ensemble` average the members'
class probabilities; the ensemble's scores are those of that mean, computed directly. And
`eval A --compare B` of two setting folders: the difference of their seeds' mean weighted-F1."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recognize import ExperimentConfig
from recognize.cli import app
from recognize.compare import seed_bootstrap, weighted_f1
from recognize.labels import LABELS
from recognize.metrics import classification_metrics
from recognize.predictor import predict_utterance
from recognize.run import train_seeds

from helpers import error_line

EMOTIONS = list(LABELS["emotion"])
P_COLUMNS = [f"p_{name}" for name in EMOTIONS]


@pytest.fixture(scope="module")
def seeded(meld_dir, tiny_bert, tmp_path_factory) -> Path:
    """Full tuning of a tiny BERT with seeds 1 and 2 (a setting folder of two runs)."""
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="full", lr=2e-3, epochs=2,
                              batch_size=16, output_dir=str(tmp_path_factory.mktemp("ensemble")))
    return train_seeds(config, [1, 2])


def read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"label": str, "prediction": str}, keep_default_na=False)


def test_eval_ensemble_scores_the_mean_of_the_seeds_probabilities(seeded):
    result = CliRunner().invoke(app, ["eval", str(seeded), "--ensemble"])
    assert result.exit_code == 0, result.output
    out = seeded / "ensemble"
    assert sorted(p.name for p in out.iterdir()) == ["confusion-test.png", "eval-test.json", "per-class-test.csv",
                                                     "predictions-test.csv"]
    members = [read_predictions(seeded / f"seed-{s}" / "predictions-test.csv") for s in (1, 2)]
    ensemble = read_predictions(out / "predictions-test.csv")
    assert list(ensemble["utterance_id"]) == list(members[0]["utterance_id"])
    mean = (members[0][P_COLUMNS].to_numpy() + members[1][P_COLUMNS].to_numpy()) / 2
    np.testing.assert_allclose(ensemble[P_COLUMNS].to_numpy(), mean, atol=1e-6)
    assert list(ensemble["prediction"]) == [EMOTIONS[k] for k in mean.argmax(-1)]
    index = {name: k for k, name in enumerate(EMOTIONS)}
    expected = classification_metrics(members[0]["label"].map(index).to_numpy(), mean.argmax(-1), EMOTIONS)
    metrics = json.loads((out / "eval-test.json").read_text())
    assert metrics["weighted_f1"] == pytest.approx(expected["weighted_f1"])
    assert metrics["confusion"] == expected["confusion"]
    assert metrics["members"] == [str(seeded / "seed-1"), str(seeded / "seed-2")]
    assert metrics["training"] == "ensemble of 2"
    assert "T--ET(tiny-bert)/seed-1: acc" in result.output and "seed-2: acc" in result.output
    report = CliRunner().invoke(app, ["report", str(seeded.parent), "--format", "csv"])
    ensemble_row = next(line for line in report.stdout.splitlines() if "ensemble of 2" in line)
    assert ensemble_row.startswith('T,tiny-bert,,emotion,"Full Tuning, ensemble of 2",1,1 2,'
                                   f'{100 * metrics["accuracy"]:.2f},,')


def test_eval_ensemble_of_named_folders_writes_into_output_dir(seeded, tmp_path):
    members = [str(seeded / "seed-2"), str(seeded / "seed-1")]
    result = CliRunner().invoke(app, ["eval", *members, "--ensemble", "--output-dir", str(tmp_path / "mix"),
                                      "--split", "dev"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "mix" / "eval-dev.json").read_text())
    assert metrics["members"] == members and metrics["split"] == "dev"


def test_predict_ensemble_is_the_mean_of_the_members(seeded):
    text = "Oh my God, that is amazing!"
    each = [predict_utterance(seeded / f"seed-{s}", text=text) for s in (1, 2)]
    result = CliRunner().invoke(app, ["predict", str(seeded), "--ensemble", "--text", text])
    assert result.exit_code == 0, result.output
    assert "ensemble of T--ET(tiny-bert)" in " ".join(result.stdout.split())
    shown = {name: float(value) for name, value in re.findall(r"(\w+)\s*│\s*([\d.]+)%", result.stdout)}
    assert shown == {name: pytest.approx(100 * (each[0][name] + each[1][name]) / 2, abs=0.006) for name in EMOTIONS}


def test_predict_ensemble_of_a_csv_averages_each_row(seeded, tmp_path):
    pd.DataFrame({"Utterance": ["I hate this.", "Wow!"]}).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(app, ["predict", str(seeded / "seed-1"), str(seeded / "seed-2"), "--ensemble",
                                      "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out.csv")
    each = [[predict_utterance(seeded / f"seed-{s}", text=t) for t in ("I hate this.", "Wow!")] for s in (1, 2)]
    for row in range(2):
        expected = [(each[0][row][n] + each[1][row][n]) / 2 for n in EMOTIONS]
        np.testing.assert_allclose(table.loc[row, P_COLUMNS].to_numpy(dtype=float), expected, atol=2e-6)
        assert table.loc[row, "prediction"] == EMOTIONS[int(np.argmax(expected))]


def test_ensemble_errors_name_the_problem(seeded, meld_dir, tiny_bert, tmp_path):
    one = str(seeded / "seed-1")
    assert error_line("eval", one, "--ensemble", "--output-dir", str(tmp_path / "e")) == (
        f"error: --ensemble: needs two or more checkpoints, got 1 ({one})")
    assert error_line("eval", one, str(seeded / "seed-2"), "--ensemble") == (
        "error: --output-dir: required with --ensemble of several folders (where the ensemble's files go)")
    assert error_line("eval", one, str(seeded / "seed-2")) == (
        "error: CKPT_DIR: 2 folders given; one, or several with --ensemble")
    assert error_line("predict", one, one, "--ensemble", "--text", "hi") == f"error: --ensemble: {one} is named twice"
    assert error_line("eval", one, "--output-dir", str(tmp_path)) == (
        "error: --output-dir: only with --ensemble (a checkpoint's eval files go into its folder)")
    sentiment = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), task="sentiment", epochs=1,
                                 output_dir=str(tmp_path / "s"))
    from recognize import train

    other = train(sentiment)
    assert error_line("eval", one, str(other), "--ensemble", "--output-dir", str(tmp_path / "e")) == (
        f"error: --ensemble: {one} predicts emotion, {other} sentiment; an ensemble's members predict one label type")
    assert not (tmp_path / "e").exists()


def test_seed_bootstrap_is_the_difference_of_the_seed_means():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    noisy = [np.where(rng.random(300) < p, truth, rng.integers(0, 3, 300)) for p in (0.9, 0.8, 0.5, 0.4)]
    result = seed_bootstrap(truth, noisy[:2], noisy[2:], classes=3, resamples=200)
    direct = (np.mean([weighted_f1(truth, p, 3) for p in noisy[:2]]) - np.mean([weighted_f1(truth, p, 3) for p in noisy[2:]]))
    assert result["difference"] == pytest.approx(direct)
    assert 0 < result["low"] < direct < result["high"]
    same = seed_bootstrap(truth, noisy[:2], noisy[:2], classes=3, resamples=50)
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0)


def test_compare_of_two_setting_folders_prints_the_seed_means_and_their_interval(seeded, meld_dir, tiny_bert, tmp_path):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), mode="full", lr=2e-3, epochs=1,
                              batch_size=16, output_dir=str(tmp_path))
    other = train_seeds(config, [1, 2])
    result = CliRunner().invoke(app, ["eval", str(seeded), "--compare", str(other)])
    assert result.exit_code == 0, result.output
    means = []
    for setting in (seeded, other):
        scores = [json.loads((setting / f"seed-{s}" / "eval-test.json").read_text())["weighted_f1"] for s in (1, 2)]
        means.append(100 * np.mean(scores))
    assert f"mean weighted-F1 A - B: {means[0] - means[1]:+.2f} points" in " ".join(result.stdout.split())
    assert error_line("eval", seeded, "--compare", other / "seed-1") == (
        f"error: --compare: {seeded} holds several seeds, {other / 'seed-1'} is one run; compare two single runs "
        "or two setting folders of seeds")
