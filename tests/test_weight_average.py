"""Weight averaging (`--ema-decay`): the moving average against its recurrence computed by
hand, the raw weights back after a swap, a trained run's checkpoint holding the average of the
weights its steps produced, and an interrupted run resuming to the same average."""

import pytest
import torch
from safetensors.torch import load_file

from recognize import ExperimentConfig, train
from recognize.weight_average import WeightAverage
from helpers import history_without_time, train_interrupted


def expected_average(snapshots: list[torch.Tensor], decay: float) -> torch.Tensor:
    """The average after the steps that produced snapshots[1:], from snapshots[0], in float64."""
    average = snapshots[0].double()
    for t, weight in enumerate(snapshots[1:]):
        rate = min(decay, (1 + t) / (10 + t))
        average = rate * average + (1 - rate) * weight.double()
    return average


@pytest.mark.parametrize("decay", [0.5, 0.99])  # 0.5 caps the ramp from the start; 0.99 only after 890 steps
def test_the_average_follows_its_recurrence_with_the_ramped_decay(decay):
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    layer.bias.requires_grad_(False)  # not trained: not averaged
    average = WeightAverage(layer, decay)
    snapshots = [layer.weight.detach().clone()]
    for _ in range(25):
        with torch.no_grad():
            layer.weight.add_(torch.randn_like(layer.weight))
        average.update()
        snapshots.append(layer.weight.detach().clone())
    averages, updates = average.state()
    assert updates == 25 and list(averages) == ["weight"]
    assert torch.allclose(averages["weight"].double(), expected_average(snapshots, decay), atol=1e-6)


def test_swapped_in_holds_the_average_and_gives_the_raw_weights_back_even_after_an_error():
    layer = torch.nn.Linear(4, 4)
    average = WeightAverage(layer, 0.9)
    with torch.no_grad():
        layer.weight.mul_(3.0)
    raw = layer.weight.detach().clone()
    average.update()
    with pytest.raises(RuntimeError, match="inside"):
        with average.swapped_in():
            assert torch.equal(layer.weight, average.state()[0]["weight"])
            assert not torch.equal(layer.weight, raw)
            raise RuntimeError("inside")
    assert torch.equal(layer.weight, raw)


def test_load_restores_the_average_and_refuses_other_names():
    layer = torch.nn.Linear(2, 2)
    first = WeightAverage(layer, 0.9)
    with torch.no_grad():
        layer.weight.add_(1.0)
    first.update()
    second = WeightAverage(layer, 0.9)
    second.load(*first.state())
    assert second.updates == 1 and all(torch.equal(second.averages[k], first.averages[k]) for k in first.averages)
    with pytest.raises(ValueError, match="missing \\['bias'\\]"):
        second.load({"weight": layer.weight.detach()}, 1)


def averaged_config(meld_dir, tiny_bert, tmp_path, **overrides) -> ExperimentConfig:
    """A run with weight averaging; by default frozen backbones (only the head trains, from the feature cache)."""
    settings = dict(data=str(meld_dir), text_model=str(tiny_bert), mode="frozen", task="sentiment", lr=1e-2, epochs=1,
                    batch_size=64, pooling="mean", ema_decay=0.9, output_dir=str(tmp_path / "checkpoints"))
    return ExperimentConfig(**{**settings, **overrides})


def test_a_run_keeps_the_average_of_its_steps_weights_and_trains_on_the_raw_ones(meld_dir, tiny_bert, tmp_path, monkeypatch):
    """One epoch, so the best epoch is the last: its checkpoint must be the average, computed
    here from a snapshot of the head after every optimiser step, not the last step's weights."""
    snapshots: dict[int, list[torch.Tensor]] = {}
    step = torch.optim.AdamW.step

    def recording_step(optimizer, *args, **kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not snapshots:
            snapshots.update({i: [p.detach().clone()] for i, p in enumerate(params)})
        result = step(optimizer, *args, **kwargs)
        for i, p in enumerate(params):
            snapshots[i].append(p.detach().clone())
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    run = train(averaged_config(meld_dir, tiny_bert, tmp_path))
    saved = load_file(str(run / "model.safetensors"))
    matched = 0
    for history in snapshots.values():
        name = next(k for k, v in saved.items() if v.shape == history[0].shape)
        kept, average, last = saved[name].double(), expected_average(history, 0.9), history[-1].double()
        assert torch.allclose(kept, average, atol=1e-6), name
        assert (kept - last).abs().max() > 100 * (kept - average).abs().max(), name  # not the raw weights trained on
        matched += 1
    assert matched == len(saved) >= 2 and len(snapshots[0]) > 20  # every head tensor, over 25 steps


def test_an_interrupted_run_with_averaging_resumes_to_the_uninterrupted_runs_weights(meld_dir, tiny_bert, tmp_path, monkeypatch):
    settings = dict(mode="full", task="emotion", lr=1e-3, epochs=3, batch_size=32)
    uninterrupted = train(averaged_config(meld_dir, tiny_bert, tmp_path / "whole", **settings))
    config = averaged_config(meld_dir, tiny_bert, tmp_path / "parts", **settings)
    train_interrupted(config, 1, monkeypatch)
    resumed = train(config, resume=True)
    assert history_without_time(resumed) == history_without_time(uninterrupted)
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (uninterrupted, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    plain = train(averaged_config(meld_dir, tiny_bert, tmp_path / "plain", **{**settings, "ema_decay": 0.0}))
    assert history_without_time(plain) != history_without_time(uninterrupted)  # the average is what dev scored
