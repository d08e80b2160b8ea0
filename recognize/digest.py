"""Digests that tell whether a model changed: of a set of named tensors, and of a model's
config.json."""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers.utils import cached_file


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A digest of named tensors: their names, shapes, dtypes and bytes, in name order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tensors.items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def model_config_digest(model_id: str) -> str:
    """A digest of the settings in `model_id`'s config.json (a local folder's, or the hub
    cache's), without the transformers version that wrote it: an activation or a norm's
    epsilon edited there changes what the same weights compute."""
    settings = json.loads(Path(cached_file(model_id, "config.json")).read_text(encoding="utf-8"))
    settings.pop("transformers_version", None)
    return hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=16).hexdigest()
