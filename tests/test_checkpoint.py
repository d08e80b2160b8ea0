"""Files on disk (atomic writes, damaged files) and length-grouped batching."""

import numpy as np
import pytest
import torch

from recognize import RecognizeError
from recognize.checkpoint import atomic_write, link_file, read_json, read_weights, write_json, write_weights
from recognize.dataset.loader import LengthGroupedBatchSampler


def test_an_interrupted_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})

    def dies_half_way(temp):
        temp.write_text('{"accura')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, dies_half_way)
    assert read_json(path) == {"accuracy": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomically_written_files_get_the_mode_of_plainly_created_ones(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")

    write_json(tmp_path / "atomic.json", {})

    assert (tmp_path / "atomic.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_weights_round_trip_exactly(tmp_path):
    tensors = {"head.1.weight": torch.randn(3, 4), "step": torch.tensor(7.0)}
    write_weights(tmp_path / "w.safetensors", tensors)
    loaded = read_weights(tmp_path / "w.safetensors")
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_a_linked_file_keeps_its_content_when_the_source_is_replaced(tmp_path):
    write_weights(tmp_path / "best.safetensors", {"w": torch.ones(2)})
    link_file(tmp_path / "best.safetensors", tmp_path / "state" / "model.safetensors")
    write_weights(tmp_path / "best.safetensors", {"w": torch.zeros(2)})  # atomic_write replaces, never edits in place

    assert torch.equal(read_weights(tmp_path / "state" / "model.safetensors")["w"], torch.ones(2))
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["model.safetensors"]  # no temp file left


def test_damaged_files_get_one_line_errors(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00\x01 not safetensors")
    with pytest.raises(RecognizeError, match=r"model\.safetensors: damaged weights file"):
        read_weights(tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text('{"experiment": ')
    with pytest.raises(RecognizeError, match=r"config\.json: not valid JSON"):
        read_json(tmp_path / "config.json")


def test_length_grouped_batches_cover_every_row_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1000).tolist()
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, seed=1, pool_batches=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    spread = np.mean([np.ptp([lengths[i] for i in batch]) for batch in batches])
    random_spread = np.mean([np.ptp(rng.choice(lengths, 16)) for _ in range(63)])
    assert spread < random_spread / 4  # padding waste is far below that of random batches


def test_batch_order_depends_only_on_seed_and_epoch():
    lengths = list(range(100))
    first, again, other_seed = (LengthGroupedBatchSampler(lengths, 8, seed) for seed in (1, 1, 2))
    assert list(first) == list(again)
    assert list(first) != list(other_seed)
    again.set_epoch(1)
    assert list(first) != list(again)
