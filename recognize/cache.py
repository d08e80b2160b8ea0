"""The feature cache: what a frozen encoder makes of each row of a split (its pooled vector,
and whether the row had the modality), computed once and reused by every later frozen run
that would compute the same thing: emotion and sentiment runs, every fusion and head.

An entry is one safetensors file per (modality, encoder weights, preprocessing, split
data) under the cache folder (`--cache-dir`, else $EMOTION_RECOGNIZE_CACHE, else
~/.cache/emotion-recognize). Its name ends in a digest of that key, which is also stored
whole in the file's metadata, with a checksum of the tensors:

- the encoder: its class, every tensor of its weights (so an `--init-from` stage's
  tuned encoder gets its own entries) and its config.json's settings, plus the pooling;
- the preprocessing: tokenizer, context size, token budget and the token ids of every row for text; the feature
  extractor's settings and the crop for audio; the frame count and image settings for
  video; the package version;
- the data: the split's CSV bytes and, per row, its clip's name, size and modification time;
- the precision, under mixed precision (bf16 or fp16: the vectors are computed under
  autocast, as a live frozen run computes them).

Entries are written to a temp name and renamed, so a killed build leaves none, and two
builders of one entry each write a whole file. An entry whose key, shapes or checksum do
not match on reading is reported and built again.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from accelerate.utils import send_to_device
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from safetensors import SafetensorError, safe_open
from torch import nn

from recognize import __version__
from recognize.checkpoint import atomic_write, save_tensors
from recognize.dataset.loader import UtteranceDataset
from recognize.config import ExperimentConfig, backbone_name
from recognize.dataset.meld import csv_path
from recognize.digest import tensors_digest
from recognize.engine import process_state, resolved_precision
from recognize.errors import RecognizeError
from recognize.main_process import on_main_process

ENVIRONMENT = "EMOTION_RECOGNIZE_CACHE"
SUFFIX = ".features.safetensors"


def cache_root(configured: str = "") -> Path:
    """The cache folder: `configured` if set, else $EMOTION_RECOGNIZE_CACHE, else ~/.cache/emotion-recognize."""
    return Path(configured or os.environ.get(ENVIRONMENT) or Path.home() / ".cache" / "emotion-recognize").expanduser()


def weights_digest(module: nn.Module) -> str:
    """A digest of every tensor of `module` (names, shapes, dtypes and bytes)."""
    return tensors_digest(module.state_dict())


def file_digest(path: Path) -> str:
    """A digest of a file's bytes."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def clips_digest(paths: "list[Optional[Path]]") -> str:
    """A digest of each row's clip: its name, size and modification time (or its absence)."""
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        if path is None:
            digest.update(b"-\n")
        else:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class Entry:
    """One cached table of one split (a modality's features, or a teacher's outputs): its
    key, its file, and (once read) its named tensors, one row per row of the split."""

    key: dict[str, Any]
    path: Path
    tensors: Optional[dict[str, torch.Tensor]] = None

    @classmethod
    def for_key(cls, root: Path, key: dict[str, Any]) -> "Entry":
        """The entry of `key` under `root` (its file may not exist yet)."""
        text = json.dumps(key, sort_keys=True)
        digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        name = f"{key['modality']}-{key['backbone']}-{key['split']}-{digest}{SUFFIX}"
        return cls(key, root / name)

    def load(self, rows: int, names: tuple[str, ...] = ("features", "present")) -> "str | None":
        """Read the file's tensors `names` into `tensors`; None when it is valid (its key,
        a row per row, its checksum), else why not."""
        if not self.path.is_file():
            return "absent"
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in names}
        except (SafetensorError, OSError, ValueError, KeyError) as error:
            return f"unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        if metadata.get("key") != json.dumps(self.key, sort_keys=True):
            return "its key differs"
        shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
        if any(not shape or shape[0] != rows for shape in shapes.values()):
            return f"shaped {shapes} for {rows} rows"
        if metadata.get("checksum") != _checksum(tensors):
            return "checksum mismatch"
        self.tensors = tensors
        return None

    def save(self, tensors: dict[str, torch.Tensor]) -> None:
        """Write the entry atomically (temp file, then rename)."""
        tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
        metadata = {"key": json.dumps(self.key, sort_keys=True), "checksum": _checksum(tensors),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            atomic_write(self.path, lambda temp: save_tensors(tensors, temp, metadata))
        except RecognizeError as error:
            raise RecognizeError(f"feature cache: {error}; give a --cache-dir that is writable and has room") from None
        self.tensors = tensors


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    """A digest of the tensors' names, dtypes and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tensors.items()):
        digest.update(f"{name}:{tensor.dtype}".encode())
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def list_entries(root: Path) -> list[dict[str, Any]]:
    """What each entry file under `root` holds, from its metadata alone (unreadable ones say so)."""
    found = []
    for path in sorted(root.glob(f"*{SUFFIX}")) if root.is_dir() else []:
        item: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                table = "embeddings" if "embeddings" in handle.keys() else "features"  # a teacher's, or an encoder's
                shape = handle.get_slice(table).get_shape()
            key = json.loads(metadata["key"])
            item.update(modality=key["modality"], model=key["model"], split=key["split"], rows=shape[0],
                        width=shape[1], created=metadata.get("created", ""))
        except (SafetensorError, OSError, ValueError, KeyError) as error:
            item["error"] = str(error).splitlines()[0] if str(error) else type(error).__name__
        found.append(item)
    return found


def clear_entries(root: Path, pattern: str = "") -> list[Path]:
    """Remove the entry files (and leftover temp files) whose names contain `pattern`; return them."""
    removed = []
    for path in sorted(root.glob(f"*{SUFFIX}")) + sorted(root.glob(f".*{SUFFIX}.*.tmp")) if root.is_dir() else []:
        if pattern in path.name:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


AUTOCAST_TYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""Mixed `--precision` values and the type autocast computes in."""


def encode_split(model: nn.Module, loader, modalities: list[str], device: torch.device,
                 title: str, precision: str = "no") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pooled vectors and presence of `modalities` for every row of `loader`'s dataset, in
    row order, computed in batches on `device` with a progress bar on a terminal, under
    autocast for a mixed `precision` (resolved: "no", "bf16" or "fp16"), as a live frozen
    run computes them; stored as float32."""
    autocast = torch.autocast(device.type, dtype=AUTOCAST_TYPES.get(precision), enabled=precision in AUTOCAST_TYPES)
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in modalities}
    presence: dict[str, list[torch.Tensor]] = {m: [] for m in modalities}
    indices = []
    model.encoders.eval()  # frozen encoders never train: no dropout in what is stored
    console = Console(stderr=True)
    columns = (TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with torch.no_grad(), Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("features", total=len(loader))
        for batch in loader:
            batch = send_to_device(batch, device, non_blocking=True)
            for modality in modalities:
                with autocast:
                    vector = model.encoders[modality](batch[modality]).float()
                present = batch.get(f"{modality}_present")
                present = torch.ones(vector.shape[0], dtype=torch.bool, device=vector.device) if present is None else present
                parts[modality].append((vector * present.to(vector.dtype).unsqueeze(-1)).cpu())
                presence[modality].append(present.cpu())
            indices.append(batch["index"].cpu())
            progress.advance(task)
    order = torch.argsort(torch.cat(indices))
    return {m: (torch.cat(parts[m])[order], torch.cat(presence[m])[order]) for m in modalities}


class FeatureDataset(UtteranceDataset):
    """A split served as cached pooled vectors: a batch carries `{m}_features` and
    `{m}_present` for its modalities instead of tokens or clips (an item is a batch of one)."""

    def __init__(self, labels: np.ndarray, features: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 lengths: "list[float]") -> None:
        super().__init__(labels, lengths=lengths)
        self.features = features

    def subset(self, rows: np.ndarray) -> "FeatureDataset":
        """The dataset of `rows` (indices into this one), in that order."""
        index = torch.as_tensor(rows, dtype=torch.long)
        subset = FeatureDataset(self.labels[rows], {m: (v[index], p[index]) for m, (v, p) in self.features.items()},
                                lengths=[self.lengths()[i] for i in rows])
        subset.add_columns({name: tensor[index] for name, tensor in self.columns.items()})
        return subset

    def __getitem__(self, index: int) -> dict:
        return collate_features(self.__getitems__([index]))

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """The rows `indices` as one ready batch, in a list of one (the DataLoader fetches a
        whole batch through this method, so a cached epoch indexes tensors, not rows)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        batch: dict[str, Any] = {"labels": torch.as_tensor(self.labels[indices], dtype=torch.long), "index": index}
        for modality, (vectors, present) in self.features.items():
            batch[f"{modality}_features"] = vectors[index]
            batch[f"{modality}_present"] = present[index]
        for name, tensor in self.columns.items():
            batch[name] = tensor[index]
        return [batch]


def collate_features(items: list[dict]) -> dict:
    """The batch of a FeatureDataset: `__getitems__` has already built it."""
    (batch,) = items
    return batch


def uses_cache(config: ExperimentConfig) -> bool:
    """Whether a run of `config` reads its encoders' features from the cache (frozen mode, cache on)."""
    return config.mode == "frozen" and config.cache


def masked_yet_clip_by_clip(encoder: Any) -> bool:
    """Whether `encoder` is a speech encoder that takes a mask yet runs one clip at a time
    (data2vec-audio, Wav2Vec2-Conformer): keys of vectors it computes say so, so that entries
    built in batches (by an older version) are not served."""
    return getattr(encoder, "pass_mask", False) and not encoder.padding_free


def tokens_digest(tokens: "list[dict[str, list[int]]]") -> str:
    """A digest of a split's token ids: a key that holds it follows any change in how rows are
    tokenised (a tokenizer's files, the toolkit's own joining of context and utterance)."""
    return hashlib.blake2b(json.dumps(tokens).encode(), digest_size=16).hexdigest()


def feature_key(config: ExperimentConfig, built: Any, modality: str, split: str, clips: "list[Optional[Path]] | None",
                tokens: "list[dict[str, list[int]]] | None" = None) -> dict[str, Any]:
    """The key of `modality`'s entry for `split`: encoder, preprocessing and data (see the module
    docstring); `tokens`, the split's token ids, make a text entry follow any change in how
    rows are tokenised, not only a change of settings."""
    encoder = built.model.encoders[modality]
    model_id = config.model_id(modality)
    if modality not in built.weight_digests:
        built.weight_digests[modality] = weights_digest(encoder)
    key: dict[str, Any] = {"modality": modality, "model": model_id, "backbone": backbone_name(model_id), "split": split,
                           "version": __version__, "encoder": type(encoder).__name__,
                           "weights": built.weight_digests[modality], "config": built.config_digests[modality],
                           "csv": file_digest(csv_path(config.data, split))}
    if modality == "T":
        tokenizer = built.tokenizer
        vocabulary = json.dumps(sorted(tokenizer.get_vocab().items())) + json.dumps(tokenizer.special_tokens_map, sort_keys=True)
        key["preprocessing"] = {"tokenizer": type(tokenizer).__name__, "vocabulary": hashlib.blake2b(vocabulary.encode(), digest_size=16).hexdigest(),
                                "context": config.context, "max_length": config.max_length, "pooling": config.pooling}
        if config.future_context:  # absent at 0: the keys of entries cached before the setting existed still match
            key["preprocessing"]["future_context"] = config.future_context
        if tokens is not None:
            key["preprocessing"]["tokens"] = tokens_digest(tokens)
    elif modality == "A":
        key["preprocessing"] = {"extractor": built.audio.extractor.to_json_string(), "max_seconds": config.max_audio_seconds}
        if masked_yet_clip_by_clip(encoder):
            key["preprocessing"]["clip_by_clip"] = True
    else:
        key["preprocessing"] = {name: repr(value) for name, value in sorted(vars(built.video).items())}
    if clips is not None:
        key["clips"] = clips_digest(clips)
    precision = resolved_precision(config.precision)
    if precision != "no":  # vectors computed under autocast differ from full precision ones
        key["precision"] = precision
    return key


def cached_features(config: ExperimentConfig, built: Any, split: str, dataset: UtteranceDataset,
                    clips: "dict[str, list[Optional[Path]]]", loader_for) -> FeatureDataset:
    """`dataset` (every row of `split`) as its encoders' pooled vectors: read from the cache,
    or computed in batches on the GPU when there is one (by the main process, the others
    waiting) and stored. `loader_for(view)` gives the batches of a dataset view."""
    root = cache_root(config.cache_dir)
    entries = {m: Entry.for_key(root, feature_key(config, built, m, split, clips.get(m), dataset.text if m == "T" else None))
               for m in config.modalities}
    state = process_state()
    missing = []
    for modality, entry in entries.items():
        problem = entry.load(len(dataset))
        if problem is not None:
            if problem != "absent":
                state.print(f"feature cache: {entry.path} is {problem}; building it again")
            missing.append(modality)

    def build_missing() -> None:
        if not missing:
            return
        view = UtteranceDataset(dataset.labels, text=dataset.text if "T" in missing else None,
                                media={m: s for m, s in dataset.media.items() if m in missing})
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        built.model.to(device)
        computed = encode_split(built.model, loader_for(view), missing, device, f"features {split} ({'+'.join(missing)})",
                                resolved_precision(config.precision))
        for modality in missing:
            vectors, present = computed[modality]
            entries[modality].save({"features": vectors.float(), "present": present.to(torch.uint8)})
    on_main_process(state, build_missing)  # every process, every time: the others read what the main one built
    for entry in entries.values():
        if entry.tensors is None and (problem := entry.load(len(dataset))) is not None:
            raise RecognizeError(f"feature cache: {entry.path} is {problem} right after it was built")
    features = {m: (entry.tensors["features"], entry.tensors["present"].bool()) for m, entry in entries.items()}
    return FeatureDataset(dataset.labels, features, lengths=dataset.lengths())
