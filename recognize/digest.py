"""Digests that tell whether a model changed: of a set of named tensors, and of a model's
config.json."""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers.utils import cached_file


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A digest of named tensors: their names, shapes, dtypes and bytes, in name order (a
    0-dimensional tensor, such as a batch norm's `num_batches_tracked`, by its one value)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tensors.items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


INCIDENTAL_SETTINGS: frozenset[str] = frozenset({
    "transformers_version", "_name_or_path", "architectures", "torch_dtype", "dtype", "id2label", "label2id"})
"""config.json keys that do not change what an encoder computes: who wrote the file, with
what, and for which head (re-saving a folder with another transformers version changes them)."""

DECODER_SETTINGS: frozenset[str] = frozenset({
    "forced_decoder_ids", "suppress_tokens", "begin_suppress_tokens", "max_target_positions", "use_cache",
    "decoder_start_token_id"})
"""An encoder-decoder's (Whisper's) settings for its decoder and generation, which the
encoder the toolkit keeps never reads (besides every `decoder_*` key)."""


def model_config_digest(model_id: str) -> str:
    """A digest of the settings in `model_id`'s config.json (a local folder's, or the hub
    cache's) that change what its encoder computes: an activation or a norm's epsilon
    edited there changes what the same weights compute. Incidental keys are left out, and
    so are an encoder-decoder's decoder settings."""
    settings = json.loads(Path(cached_file(model_id, "config.json")).read_text(encoding="utf-8"))
    decoder = settings.get("is_encoder_decoder", False)
    kept = {key: value for key, value in settings.items() if key not in INCIDENTAL_SETTINGS
            and not (decoder and (key in DECODER_SETTINGS or key.startswith("decoder_")))}
    return hashlib.blake2b(json.dumps(kept, sort_keys=True).encode(), digest_size=16).hexdigest()
