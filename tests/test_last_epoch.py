"""`--keep-last` keeps the last epoch's weights beside the best epoch's, and `--init-epoch
last` starts a stage from them (two-stage training from stage 1's last epoch, not its best).

Which epoch is best is forced by scoring dev with a stand-in whose weighted-F1 falls (or
rises) epoch after epoch: dev only chooses the epoch, so both runs train the same weights."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import recognize.engine
from recognize import ExperimentConfig, RecognizeError, train
from recognize.cli import app
from recognize.lineage import record_stages
from recognize.metrics import classification_metrics


def dev_scores_that(direction: int):
    """classification_metrics, but with a weighted-F1 that falls (direction -1) or rises (+1)
    with each call, so that the first (or the last) epoch is the best."""
    calls = []

    def scored(*args, **kwargs):
        calls.append(None)
        return {**classification_metrics(*args, **kwargs), "weighted_f1": 0.5 + direction * 0.01 * len(calls)}
    return scored


@pytest.fixture(scope="module")
def setting(meld_dir: Path, tiny_bert: Path, tmp_path_factory) -> dict:
    """Three epochs of full tuning on the generated MELD folder."""
    return dict(data=str(meld_dir), text_model=str(tiny_bert), modal="T", mode="full", epochs=3, batch_size=8,
                lr=1e-3, workers=0, output_dir=str(tmp_path_factory.mktemp("last-epoch")))


@pytest.fixture(scope="module")
def best_first(setting) -> Path:
    """A run with --keep-last whose first epoch is its best."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recognize.engine, "classification_metrics", dev_scores_that(-1))
        return train(ExperimentConfig(keep_last=True, **{**setting, "output_dir": setting["output_dir"] + "/first"}))


@pytest.fixture(scope="module")
def best_last(setting) -> Path:
    """The same run without --keep-last, its last epoch its best: its model.safetensors is the last epoch's weights."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recognize.engine, "classification_metrics", dev_scores_that(+1))
        return train(ExperimentConfig(**{**setting, "output_dir": setting["output_dir"] + "/last"}))


def test_keep_last_saves_the_last_epochs_weights_beside_the_best_epochs(best_first, best_last):
    first_metrics = json.loads((best_first / "metrics.json").read_text())
    assert (first_metrics["best_epoch"], first_metrics["epochs_run"]) == (1, 3)
    assert json.loads((best_last / "metrics.json").read_text())["best_epoch"] == 3
    assert not (best_last / "last.safetensors").exists()

    kept, best, last_epoch = (load_file(str(path)) for path in (best_first / "last.safetensors", best_first / "model.safetensors",
                                                              best_last / "model.safetensors"))
    assert set(kept) == set(best) == set(last_epoch)
    assert all(torch.equal(kept[name], last_epoch[name]) for name in kept)
    assert not all(torch.equal(kept[name], best[name]) for name in kept)


def test_a_run_whose_best_epoch_is_its_last_keeps_one_file_under_two_names(setting):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recognize.engine, "classification_metrics", dev_scores_that(+1))
        folder = train(ExperimentConfig(keep_last=True, **{**setting, "epochs": 1, "output_dir": setting["output_dir"] + "/one"}))
    assert (folder / "last.safetensors").stat().st_ino == (folder / "model.safetensors").stat().st_ino


def test_init_epoch_last_starts_the_next_stage_from_the_last_epoch_and_names_it(setting, best_first, tmp_path):
    # lr 0: the stage's stored tensors are exactly those it was initialised with
    stage = train(ExperimentConfig.from_dict({**setting, "mode": "frozen", "lr": 0.0, "epochs": 1, "output_dir": str(tmp_path),
                                              "init_from": [str(best_first)], "init_epoch": "last"}))
    stored, kept = load_file(str(stage / "model.safetensors")), load_file(str(best_first / "last.safetensors"))
    assert set(stored) == set(kept)
    assert all(torch.equal(stored[name], kept[name]) for name in stored)

    record = json.loads((stage / "config.json").read_text())
    assert record["lineage"][0]["epoch"] == "last"
    assert record_stages(record) == "Full Tuning (last epoch) -> Training Classification"
    result = CliRunner().invoke(app, ["eval", str(stage), "--split", "dev"])
    assert result.exit_code == 0, result.output
    assert json.loads((stage / "eval-dev.json").read_text())["training"] == "Full Tuning (last epoch) -> Training Classification"


def test_init_epoch_best_records_no_epoch(setting, best_first, tmp_path):
    stage = train(ExperimentConfig.from_dict({**setting, "mode": "frozen", "lr": 0.0, "epochs": 1, "output_dir": str(tmp_path),
                                              "init_from": [str(best_first)]}))
    stored, best = load_file(str(stage / "model.safetensors")), load_file(str(best_first / "model.safetensors"))
    assert all(torch.equal(stored[name], best[name]) for name in stored)
    record = json.loads((stage / "config.json").read_text())
    assert "epoch" not in record["lineage"][0]
    assert record_stages(record) == "Full Tuning -> Training Classification"


def test_init_epoch_last_from_a_run_without_its_last_weights_is_a_one_line_error(setting, best_last, tmp_path):
    config = ExperimentConfig.from_dict({**setting, "mode": "frozen", "epochs": 1, "output_dir": str(tmp_path),
                                         "init_from": [str(best_last)], "init_epoch": "last"})
    with pytest.raises(RecognizeError, match=r"^.*T--ET\(tiny-bert\): checkpoint has no last.safetensors "
                                             r"\(it was trained without --keep-last\)$"):
        train(config)
    assert not config.run_dir.exists()


def test_a_run_resumed_without_keep_last_drops_the_earlier_epochs_last_weights(setting, tmp_path):
    settings = {**setting, "epochs": 2, "output_dir": str(tmp_path)}

    def stop_in_epoch_2(model, epoch, loss):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(recognize.engine, "check_finite", stop_in_epoch_2)
        train(ExperimentConfig(keep_last=True, **settings))
    folder = ExperimentConfig(**settings).run_dir
    assert (folder / "last.safetensors").exists()  # epoch 1's

    train(ExperimentConfig(**settings), resume=True)
    assert json.loads((folder / "metrics.json").read_text())["epochs_run"] == 2
    assert not (folder / "last.safetensors").exists()
