"""Files on disk (atomic writes, damaged files) and length-grouped batching."""

import errno
import json
import os
import stat
import threading

import numpy as np
import pytest
import torch
from accelerate.data_loader import prepare_data_loader
from torch.utils.data import DataLoader

from recognize import RecognizeError
from recognize.checkpoint import atomic_write, link_file, read_json, read_weights, write_json, write_weights
from recognize.dataset.loader import LengthGroupedBatchSampler
from recognize.digest import model_config_digest
from recognize.engine import set_epoch


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


def test_a_path_that_cannot_be_written_is_a_one_line_error_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(RecognizeError, match=rf"^{tmp_path}: is a folder; give a file name$"):
        write_json(tmp_path, {})
    with pytest.raises(RecognizeError, match=r"notes\.txt/out\.json: cannot write \((Not a directory|File exists)\)$"):
        write_json(tmp_path / "notes.txt" / "out.json", {})

    def disk_full(temp):
        temp.write_text("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(RecognizeError, match=r"out\.json: cannot write \(No space left on device\)$"):
        atomic_write(tmp_path / "out.json", disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_pipe_or_device_is_written_to_and_never_replaced(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    write_json(pipe, {"a": 1})
    reader.join(timeout=10)
    assert received == ['{\n  "a": 1\n}\n']
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # still the pipe, not a regular file renamed over it


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
    assert [len(batch) for batch in batches] == [16] * 62 + [8]  # the short batch last
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


def test_two_processes_see_every_row_each_epoch_and_a_new_order_each_epoch():
    # as accelerate deals a training loader out to two processes (torchrun): its BatchSamplerShard wraps the sampler
    lengths = np.random.default_rng(0).integers(1, 50, size=103).tolist()
    first_shards = []
    for epoch in (0, 1):
        shards = []
        for rank in (0, 1):
            loader = DataLoader(list(range(103)), batch_sampler=LengthGroupedBatchSampler(lengths, 8, seed=1))
            shard = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False)
            set_epoch(shard, epoch)
            shards.append([int(i) for batch in shard for i in batch])
        assert set(shards[0]) | set(shards[1]) == set(range(103))  # no row left out
        assert len(shards[0]) == len(shards[1]) == 56  # 7 full batches each: 9 rows repeated to even them, as DDP does
        first_shards.append(shards[0])
    assert first_shards[0] != first_shards[1]


def test_the_backbone_config_digest_sees_what_the_encoder_computes_and_nothing_else(tmp_path):
    """Re-saving (another transformers version, dtype, head labels) or a Whisper decoder's
    settings leave it as it is; an encoder setting changes it."""
    folder = tmp_path / "model"
    folder.mkdir()

    def digest_of(settings: dict) -> str:
        (folder / "config.json").write_text(json.dumps(settings))
        return model_config_digest(str(folder))

    whisper = {"model_type": "whisper", "is_encoder_decoder": True, "d_model": 32, "encoder_layers": 2,
               "activation_function": "gelu", "decoder_layers": 2, "suppress_tokens": [1, 2]}
    base = digest_of(whisper)
    assert digest_of({**whisper, "transformers_version": "5.17.0", "torch_dtype": "float16", "architectures": ["X"],
                      "id2label": {"0": "a"}, "decoder_layers": 4, "suppress_tokens": [], "max_target_positions": 9}) == base
    assert digest_of({**whisper, "activation_function": "relu"}) != base
    assert digest_of({**whisper, "encoder_layers": 3}) != base
