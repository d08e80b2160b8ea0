"""Training end to end on generated MELD-format text with a tiny BERT: each mode learns,
touches only what it should, repeats exactly, resumes exactly, and `evaluate` reproduces
the metrics the run recorded."""

import copy
import csv
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.utils.class_weight import compute_class_weight
from typer.testing import CliRunner

from recognize import ExperimentConfig, RecognizeError, evaluate, train
from recognize import engine
from recognize import run as run_module
from recognize.builder import build_model
from recognize.cli import app
from recognize.engine import make_optimizer
from recognize.dataset.meld import label_ids, load_split
from recognize.model.encoders import load_backbone
from helpers import history_without_time, train_interrupted

LEARNING_RATES = {"full": 1e-3, "lora": 5e-3, "frozen": 1e-2}
HISTORY_COLUMNS = ["epoch", "train_loss", "dev_accuracy", "dev_weighted_f1", "dev_macro_f1", "lr", "seconds", "samples_per_second"]


def make_config(meld_dir, tiny_bert, tmp_path, mode="full", task="emotion", **overrides) -> ExperimentConfig:
    """A quick run of the tiny BERT on the generated data."""
    settings = dict(data=str(meld_dir), text_model=str(tiny_bert), mode=mode, task=task, lr=LEARNING_RATES[mode],
                    epochs=8, batch_size=16, pooling="mean", output_dir=str(tmp_path / "checkpoints"))
    return ExperimentConfig(**{**settings, **overrides})


def majority_weighted_f1(meld_dir, task: str) -> float:
    """Dev weighted-F1 of always predicting the most frequent training class: the chance level."""
    train_labels = label_ids(load_split(meld_dir, "train"), task)
    dev_labels = label_ids(load_split(meld_dir, "dev"), task)
    majority = np.bincount(train_labels).argmax()
    share = float(np.mean(dev_labels == majority))
    return share * (2 * share / (1 + share))  # F1 of the majority class (precision = share, recall = 1), weighted by its share


@pytest.fixture(scope="module")
def runs(meld_dir, tiny_bert, tmp_path_factory) -> dict:
    """One finished run per mode (full/lora on emotion, frozen on sentiment), with the
    backbone's weights before training."""
    tmp = tmp_path_factory.mktemp("runs")
    specs = {"full": "emotion", "lora": "emotion", "frozen": "sentiment"}
    return {mode: train(make_config(meld_dir, tiny_bert, tmp, mode=mode, task=task)) for mode, task in specs.items()}


@pytest.mark.parametrize("mode, task, margin", [("full", "emotion", 0.45), ("lora", "emotion", 0.2), ("frozen", "sentiment", 0.15)])
def test_each_mode_beats_chance_on_dev(runs, meld_dir, mode, task, margin):
    metrics = json.loads((runs[mode] / "metrics.json").read_text())
    assert metrics["dev"]["weighted_f1"] > majority_weighted_f1(meld_dir, task) + margin
    assert metrics["test"]["weighted_f1"] > majority_weighted_f1(meld_dir, task) + margin / 2


@pytest.mark.parametrize("mode", ["full", "lora", "frozen"])
def test_run_folder_holds_exactly_the_documented_files(runs, mode):
    folder = runs[mode]
    assert folder.name == {"full": "T--ET(tiny-bert)", "lora": "T--EL(tiny-bert)", "frozen": "T--SF(tiny-bert)"}[mode]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.safetensors"]
    with open(folder / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == HISTORY_COLUMNS and [int(r["epoch"]) for r in rows] == list(range(1, 9))
    record = json.loads((folder / "config.json").read_text())
    assert record["run_name"] == folder.name and record["version"] == "0.1.0"
    assert record["labels"] == (["neutral", "positive", "negative"] if mode == "frozen" else
                                ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"])
    assert record["experiment"]["pooling"] == "mean" and record["experiment"]["mode"] == mode
    metrics = json.loads((folder / "metrics.json").read_text())
    best = max(rows, key=lambda r: float(r["dev_weighted_f1"]))
    assert metrics["best_epoch"] == int(best["epoch"])
    assert metrics["dev"]["weighted_f1"] == pytest.approx(float(best["dev_weighted_f1"]), abs=1e-6)


def test_lora_stores_adapters_and_head_only(runs):
    stored = load_file(str(runs["lora"] / "model.safetensors"))
    assert stored and all(".lora_A." in k or ".lora_B." in k or k.startswith("head.") for k in stored)
    assert any(".lora_B." in k and torch.count_nonzero(v) > 0 for k, v in stored.items())  # B starts at 0: it trained


def test_frozen_mode_stores_the_head_only(runs):
    assert sorted(load_file(str(runs["frozen"] / "model.safetensors"))) == ["head.1.bias", "head.1.weight"]


@pytest.mark.parametrize("mode", ["lora", "frozen"])
def test_training_leaves_the_base_weights_bit_identical(mode, meld_dir, tiny_bert, tmp_path, monkeypatch):
    trained = {}

    def fit_and_keep(model, *args, **kwargs):
        trained["model"] = model
        return real_fit(model, *args, **kwargs)

    real_fit = run_module.fit
    monkeypatch.setattr(run_module, "fit", fit_and_keep)
    train(make_config(meld_dir, tiny_bert, tmp_path, mode=mode, epochs=2))
    backbone = trained["model"].encoders["T"].backbone.state_dict()
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in backbone.items() if "lora_" not in k}
    original = backbone_weights(tiny_bert)
    assert set(base) == set(original)
    assert all(torch.equal(base[k], original[k]) for k in original)
    assert any("lora_" in k for k in backbone) == (mode == "lora")


@pytest.mark.parametrize("mode", ["full", "lora", "frozen"])
def test_eval_rebuilds_the_model_and_reproduces_the_recorded_metrics(runs, mode):
    recorded = json.loads((runs[mode] / "metrics.json").read_text())
    for split in ("test", "dev"):
        metrics = evaluate(runs[mode], split=split)
        assert metrics["accuracy"] == pytest.approx(recorded[split]["accuracy"], abs=1e-9)
        assert metrics["weighted_f1"] == pytest.approx(recorded[split]["weighted_f1"], abs=1e-9)
        assert metrics["confusion"] == recorded[split]["confusion"]
        assert json.loads((runs[mode] / f"eval-{split}.json").read_text())["weighted_f1"] == metrics["weighted_f1"]
    with open(runs[mode] / "predictions-test.csv") as handle:
        predictions = list(csv.DictReader(handle))
    confusion = np.array(recorded["test"]["confusion"])
    assert len(predictions) == confusion.sum()
    correct = sum(row["label"] == row["prediction"] for row in predictions)
    assert correct == np.trace(confusion)


def test_same_seed_repeats_exactly_and_another_seed_differs(meld_dir, tiny_bert, tmp_path):
    first = train(make_config(meld_dir, tiny_bert, tmp_path / "a", epochs=3))
    second = train(make_config(meld_dir, tiny_bert, tmp_path / "b", epochs=3))
    other = train(make_config(meld_dir, tiny_bert, tmp_path / "c", epochs=3, seed=7))
    history = [history_without_time(folder) for folder in (first, second, other)]
    assert history[0] == history[1]
    assert history[0] != history[2]
    weights = [load_file(str(folder / "model.safetensors")) for folder in (first, second)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(meld_dir, tiny_bert, tmp_path, monkeypatch, workers):
    """Also with DataLoader worker processes, which must not draw their seed from the
    global generator (a resumed run would start them an epoch later, shifting dropout)."""
    uninterrupted = train(make_config(meld_dir, tiny_bert, tmp_path / "whole", epochs=4, context=2, workers=workers))

    config = make_config(meld_dir, tiny_bert, tmp_path / "parts", epochs=4, context=2, workers=workers)
    train_interrupted(config, 2, monkeypatch)
    resumed = train(config, resume=True)

    assert history_without_time(resumed) == history_without_time(uninterrupted)
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (uninterrupted, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (resumed / "state").exists()


def test_a_run_killed_in_its_test_evaluation_resumes_to_it_without_training_again(meld_dir, tiny_bert, tmp_path,
                                                                                  monkeypatch):
    """Training has ended and only the test split's scores are missing (a job preempted
    while evaluating): --resume evaluates and writes metrics.json, and trains no epoch."""
    uninterrupted = train(make_config(meld_dir, tiny_bert, tmp_path / "whole", epochs=2))
    config = make_config(meld_dir, tiny_bert, tmp_path / "parts", epochs=2)
    score = run_module.score

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "score", killed)
        with pytest.raises(KeyboardInterrupt):
            train(config)
    assert sorted(p.name for p in (config.run_dir / "state").iterdir()) == ["trained.json"]

    def no_training(*args, **kwargs):
        raise AssertionError("an epoch was trained again")
    monkeypatch.setattr(engine, "_train_epoch", no_training)
    monkeypatch.setattr(run_module, "score", score)
    resumed = train(config, resume=True)

    assert history_without_time(resumed) == history_without_time(uninterrupted)
    finished = [json.loads((folder / "metrics.json").read_text()) for folder in (uninterrupted, resumed)]
    assert [{k: m[k] for k in ("best_epoch", "dev", "test")} for m in finished] == [
        {k: finished[0][k] for k in ("best_epoch", "dev", "test")}] * 2
    assert not (resumed / "state").exists()


def test_a_training_split_without_some_classes_or_with_unmeld_label_pairs_is_warned_about(meld_dir, tiny_bert, tmp_path):
    data = tmp_path / "MELD"
    shutil.copytree(meld_dir, data)
    train_csv = data / "train_sent_emo.csv"
    rows = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    rows.loc[rows["Emotion"].isin(["disgust", "fear"]), ["Emotion", "Sentiment"]] = ["anger", "negative"]
    joy = rows.index[rows["Emotion"] == "joy"][:2]
    rows.loc[joy, "Sentiment"] = "negative"  # a sentiment MELD never gives joy
    rows.to_csv(train_csv, index=False)
    first = rows.loc[joy].astype({"Dialogue_ID": int, "Utterance_ID": int}).sort_values(["Dialogue_ID", "Utterance_ID"]).iloc[0]

    result = CliRunner().invoke(app, ["train", str(data), "--text-model", str(tiny_bert), "--mode", "frozen", "--epochs", "1",
                                      "--output-dir", str(tmp_path / "ck")])

    assert result.exit_code == 0, result.output
    assert "warning: no training row is labelled disgust, fear: the model cannot learn those classes" in result.output
    assert (f"warning: 2 training row(s) pair an emotion with a sentiment MELD never gives it (e.g. Dialogue_ID "
            f"{first['Dialogue_ID']}, Utterance_ID {first['Utterance_ID']}: joy, negative); check the CSV's Emotion and "
            "Sentiment columns") in " ".join(result.output.split())


def test_init_from_carries_a_full_tuning_stage_into_a_frozen_stage(runs, meld_dir, tiny_bert, tmp_path):
    stage1 = runs["full"]
    config = ExperimentConfig.from_checkpoint(stage1, mode="frozen", init_from=[str(stage1)], epochs=2, lr=1e-2,
                                              output_dir=str(tmp_path))
    stage2 = train(config)
    record = json.loads((stage2 / "config.json").read_text())
    assert [step["run_name"] for step in record["lineage"]] == ["T--ET(tiny-bert)"]
    first = load_file(str(stage1 / "model.safetensors"))
    second = load_file(str(stage2 / "model.safetensors"))
    backbone = [k for k in first if k.startswith("encoders.")]
    assert backbone and all(torch.equal(first[k], second[k]) for k in backbone)  # frozen: stage 1's backbone kept
    assert not torch.equal(first["head.1.weight"], second["head.1.weight"])  # the head trained on
    recorded = json.loads((stage2 / "metrics.json").read_text())["test"]
    assert evaluate(stage2)["weighted_f1"] == pytest.approx(recorded["weighted_f1"], abs=1e-9)


def test_class_weights_are_inverse_frequencies():
    weights = engine.class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert weights.tolist() == pytest.approx([6 / (4 * 3), 6 / (4 * 1), 6 / (4 * 2), 0.0])


def backbone_weights(model_dir) -> dict[str, torch.Tensor]:
    """The pretrained backbone's weights, without the pooler head the encoders drop."""
    return {k: v for k, v in load_backbone(str(model_dir)).state_dict().items() if not k.startswith("pooler.")}


def test_early_stopping_ends_the_run_after_patience_epochs_without_progress(meld_dir, tiny_bert, tmp_path):
    folder = train(make_config(meld_dir, tiny_bert, tmp_path, epochs=6, lr=0.0, patience=2))  # lr 0: dev never improves
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["epochs_run"]) == (1, 3)


def test_gradient_accumulation_steps_the_schedule_once_per_accumulated_batch(meld_dir, tiny_bert, tmp_path):
    folder = train(make_config(meld_dir, tiny_bert, tmp_path, epochs=2, batch_size=8, grad_accum=3, warmup=0.0))
    lrs = [float(row["lr"]) for row in history_without_time(folder)]
    batches = -(-len(load_split(meld_dir, "train")) // 8)
    steps_per_epoch = -(-batches // 3)
    assert lrs == pytest.approx([1e-3 * (1 - steps_per_epoch / (2 * steps_per_epoch)), 0.0])


def test_every_steps_learning_rate_is_the_linear_warmup_and_decay_in_closed_form(meld_dir, tiny_bert, tmp_path, monkeypatch):
    # 1,638 rows in batches of 64: 26 batches, 9 windows of 3 an epoch, 27 steps in 3 epochs, round(0.25 * 27) = 7 of
    # warm-up: step k (from 0) runs at peak * k / 7, then at peak * (27 - k) / (27 - 7)
    rates = []
    step = torch.optim.AdamW.step

    def recording_step(optimizer, *args, **kwargs):
        rates.append([group["lr"] for group in optimizer.param_groups])
        return step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    train(make_config(meld_dir, tiny_bert, tmp_path, mode="frozen", epochs=3, batch_size=64, grad_accum=3, warmup=0.25))
    peak = LEARNING_RATES["frozen"]
    expected = [peak * (k / 7 if k < 7 else (27 - k) / 20) for k in range(27)]
    assert [group for group, *_ in rates] == pytest.approx(expected, abs=1e-12)
    assert all(len(set(groups)) == 1 for groups in rates)  # the head's weights and biases alike


def test_head_lr_applies_to_the_fusion_and_head_and_lr_to_the_encoders(tiny_bert):
    config = ExperimentConfig(modal="T", mode="full", text_model=str(tiny_bert), lr=1e-4, head_lr=5e-3)
    model = build_model(config).model
    optimizer = make_optimizer(model, config)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert set(lr_of) == {id(p) for p in named.values()}
    assert all(lr_of[id(p)] == (1e-4 if name.startswith("encoders.") else 5e-3) for name, p in named.items())
    assert all(decay_of[id(p)] == (0.01 if p.ndim >= 2 else 0.0) for p in named.values())
    assert optimizer.param_groups[0]["lr"] == 1e-4  # history.csv's lr column follows the encoders'
    default = make_optimizer(model, ExperimentConfig(modal="T", text_model=str(tiny_bert), lr=1e-4))
    assert {group["lr"] for group in default.param_groups} == {1e-4}


def test_compiled_backbones_compute_what_eager_ones_do_and_store_the_same_names(meld_dir, tiny_bert, tmp_path):
    settings = dict(data=str(meld_dir), text_model=str(tiny_bert), mode="full", epochs=1, lr=2e-3, batch_size=16)
    eager, compiled = (build_model(ExperimentConfig(**settings, compile=c)).model for c in (False, True))
    compiled.load_state_dict(eager.state_dict())
    batch = {"T": {"input_ids": torch.tensor([[2, 7, 9, 3, 0], [2, 5, 3, 0, 0]]),
                   "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])}}
    for model in (eager, compiled):
        model.eval()
        model(batch).sum().backward()
    assert torch.allclose(eager(batch), compiled(batch), atol=1e-5)
    grads = [{n: p.grad for n, p in m.named_parameters() if p.grad is not None} for m in (eager, compiled)]
    assert grads[0].keys() == grads[1].keys() and all(torch.allclose(grads[0][n], grads[1][n], atol=1e-5) for n in grads[0])

    folders = [train(ExperimentConfig(**settings, compile=c, output_dir=str(tmp_path / str(c)))) for c in (False, True)]
    assert load_file(str(folders[0] / "model.safetensors")).keys() == load_file(str(folders[1] / "model.safetensors")).keys()
    assert evaluate(folders[1], split="dev")["accuracy"] == pytest.approx(
        json.loads((folders[1] / "metrics.json").read_text())["dev"]["accuracy"], abs=1e-9)


def test_a_damaged_resumable_state_is_a_one_line_error(meld_dir, tiny_bert, tmp_path, monkeypatch):
    config = make_config(meld_dir, tiny_bert, tmp_path, epochs=2)
    save_state = engine.save_state

    def save_then_die(run_dir, state, *args):
        save_state(run_dir, state, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(engine, "save_state", save_state)
    (config.run_dir / "state" / "latest.json").write_text("{}")  # valid JSON, not what save_state writes

    with pytest.raises(RecognizeError, match=r"state: damaged resumable state \(KeyError: 'folder'\); --overwrite trains"):
        train(make_config(meld_dir, tiny_bert, tmp_path, epochs=2), resume=True)


@pytest.mark.parametrize("weighted, clip", [(False, 0.0), (True, 0.0), (False, 0.05)])
def test_an_accumulated_step_follows_the_mean_gradient_over_its_windows_samples(meld_dir, tiny_bert, tmp_path, monkeypatch,
                                                                                weighted, clip):
    # frozen and cached: batches of feature rows, no dropout; 1,638 rows in batches of 8 make 205 batches (the last
    # of 6), so windows of 3 end in one batch alone; every step must follow the mean loss over its window's rows,
    # with --class-weights the weighted mean (sum of w_y * loss over the window / sum of w_y), as one batch would;
    # with --grad-clip c that gradient scaled by min(1, c / its norm over every trained tensor)
    config = make_config(meld_dir, tiny_bert, tmp_path, mode="frozen", epochs=1, batch_size=8, grad_accum=3, dropout=0.0,
                         grad_clip=clip, class_weights=weighted)
    fed, windows = [], []
    fit = engine.fit

    def recording_fit(model, *args, **kwargs):
        model.register_forward_pre_hook(lambda module, inputs: fed.append(inputs[0]))
        step = torch.optim.AdamW.step

        def recording_step(optimizer, *step_args, **step_kwargs):
            head = model.head[1]
            windows.append((copy.deepcopy(model).eval(), (head.weight.grad.clone(), head.bias.grad.clone()), list(fed)))
            fed.clear()
            return step(optimizer, *step_args, **step_kwargs)

        monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit", recording_fit)
    train(config)

    assert [len(batches) for _, _, batches in windows] == [3] * 68 + [1]
    assert sum(len(b["labels"]) for _, _, batches in windows for b in batches) == len(load_split(meld_dir, "train"))
    labels = label_ids(load_split(meld_dir, "train"), "emotion")
    balanced = torch.tensor(compute_class_weight("balanced", classes=np.arange(7), y=labels), dtype=torch.float32)
    norms = []
    for model, gradient, batches in windows[:2] + windows[-2:]:
        window = {key: torch.cat([b[key] for b in batches]) for key in ("T_features", "T_present", "labels")}
        torch.nn.functional.cross_entropy(model(window), window["labels"], weight=balanced if weighted else None).backward()
        expected = (model.head[1].weight.grad, model.head[1].bias.grad)
        norms.append(math.sqrt(sum(float(g.square().sum()) for g in expected)))
        scale = min(1.0, clip / norms[-1]) if clip else 1.0
        assert all(torch.allclose(got, scale * want, atol=1e-6) for got, want in zip(gradient, expected))
    assert not clip or max(norms) > clip  # the clipping was exercised


def test_checkpoints_of_different_precisions_evaluate_in_one_process(meld_dir, tiny_bert, tmp_path):
    """accelerate holds one precision per process: `eval --compare` of a bf16 run and a
    full-precision one, or a teacher of another precision, must not trip over it."""
    runs = {precision: train(make_config(meld_dir, tiny_bert, tmp_path / precision, mode="frozen", epochs=1,
                                         precision=precision)) for precision in ("bf16", "no")}
    result = CliRunner().invoke(app, ["eval", str(runs["bf16"]), "--compare", str(runs["no"]), "--split", "dev"])
    assert result.exit_code == 0, result.output
    recorded = {p: json.loads((folder / "metrics.json").read_text())["dev"]["weighted_f1"] for p, folder in runs.items()}
    evaluated = {p: json.loads((folder / "eval-dev.json").read_text())["weighted_f1"] for p, folder in runs.items()}
    assert evaluated == pytest.approx(recorded, abs=1e-12)
