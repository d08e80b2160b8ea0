"""Digests that tell whether weights changed: of a set of named tensors."""

import hashlib
from collections.abc import Mapping

import torch


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A digest of named tensors: their names, shapes, dtypes and bytes, in name order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tensors.items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()
