"""Digests of named tensors: every kind of tensor a backbone's state holds."""

import hashlib

import torch

from recognize.digest import tensors_digest


def test_a_scalar_buffer_is_digested_by_its_value():
    # a batch norm (Wav2Vec2-Conformer's convolution module) holds a 0-dimensional int64 counter
    counter = torch.nn.BatchNorm1d(4).state_dict()["num_batches_tracked"]
    assert counter.dim() == 0

    digest = tensors_digest({"count": counter})

    expected = hashlib.blake2b(digest_size=16)
    expected.update(b"count:():torch.int64")
    expected.update(counter.numpy().tobytes())
    assert digest == expected.hexdigest()
    assert tensors_digest({"count": counter + 1}) != digest
