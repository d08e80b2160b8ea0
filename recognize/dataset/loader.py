"""Preprocessed utterances as a torch Dataset, their collation into padded batches, and
length-grouped batching (similar lengths together, so dynamic padding wastes little)."""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from recognize.dataset.text import TextEncoding, pad_text
from recognize.errors import MediaError

log = logging.getLogger(__name__)


@dataclass
class MediaSource:
    """One modality's clips for a split: a path per row (None: no usable clip) and the
    function that reads a path into the model's input for one sample."""

    paths: list[Optional[Path]]
    read: Callable[[Path], Any]
    failed: set[Path] = field(default_factory=set)

    def get(self, index: int) -> Any:
        """The preprocessed clip of row `index`, or None when it is missing or fails to decode
        (with a warning naming the clip, the first time this process meets its failure)."""
        path = self.paths[index]
        if path is None:
            return None
        try:
            return self.read(path)
        except MediaError as error:
            if path not in self.failed:
                self.failed.add(path)
                log.warning("%s; the sample is zero-filled and masked", error)
            return None


class UtteranceDataset(Dataset):
    """Rows of one split, each with its label and its input per modality (text tokenised
    up front; audio and video read from disk when the row is fetched), and any per-row
    `columns` added for training (e.g. a teacher's logits), served under their names."""

    def __init__(self, labels: np.ndarray, text: "list[TextEncoding] | None" = None,
                 media: "dict[str, MediaSource] | None" = None, lengths: "list[float] | None" = None) -> None:
        self.labels = labels
        self.text = text
        self.media = media or {}
        self._lengths = lengths
        self.columns: dict[str, torch.Tensor] = {}

    def add_columns(self, columns: dict[str, torch.Tensor]) -> None:
        """Serve each tensor of `columns` (one row per row of the dataset) in every batch, under its name."""
        for name, tensor in columns.items():
            if tensor.shape[0] != len(self):
                raise ValueError(f"column {name} has {tensor.shape[0]} rows for a dataset of {len(self)}")
            self.columns[name] = tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {"index": index, "label": int(self.labels[index])}
        if self.text is not None:
            item["T"] = self.text[index]
        for modality, source in self.media.items():
            item[modality] = source.get(index)
        if self.columns:
            item["columns"] = {name: tensor[index] for name, tensor in self.columns.items()}
        return item

    def subset(self, rows: np.ndarray) -> "UtteranceDataset":
        """The dataset of `rows` (indices into this one), in that order."""
        lengths = [self._lengths[i] for i in rows] if self._lengths is not None else None
        subset = UtteranceDataset(self.labels[rows], text=None if self.text is None else [self.text[i] for i in rows],
                                  media={m: MediaSource([s.paths[i] for i in rows], s.read) for m, s in self.media.items()},
                                  lengths=lengths)
        index = torch.as_tensor(rows, dtype=torch.long)
        subset.add_columns({name: tensor[index] for name, tensor in self.columns.items()})
        return subset

    def lengths(self) -> list[float]:
        """A size per row that drives length grouping: given lengths (e.g. audio seconds),
        else the token count, else 1."""
        if self._lengths is not None:
            return self._lengths
        if self.text is not None:
            return [len(e["input_ids"]) for e in self.text]
        return [1] * len(self)


@dataclass
class Collator:
    """Turns dataset items into one batch: {"T": padded text, "A": audio features,
    "V": frames, "{m}_present": which rows have modality m, "labels", "index", and the
    dataset's added columns}.
    A row without its clip gets zeros in its place and False in `{m}_present`."""

    pad_token_id: int = 0
    audio: Optional[Callable[[list[np.ndarray]], dict[str, torch.Tensor]]] = None
    video_shape: tuple[int, ...] = ()
    silence: np.ndarray = field(default_factory=lambda: np.zeros(1600, dtype=np.float32))

    def __call__(self, items: list[dict]) -> dict:
        """One batch of `items`, as the class docstring lays it out."""
        batch = {
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
        }
        if "T" in items[0]:
            batch["T"] = pad_text([item["T"] for item in items], self.pad_token_id)
        if "A" in items[0]:
            batch["A_present"] = torch.tensor([item["A"] is not None for item in items])
            batch["A"] = self.audio([self.silence if item["A"] is None else item["A"] for item in items])
        if "V" in items[0]:
            batch["V_present"] = torch.tensor([item["V"] is not None for item in items])
            frames = [torch.zeros(self.video_shape) if item["V"] is None else item["V"] for item in items]
            batch["V"] = {"pixel_values": torch.stack(frames)}
        for name in items[0].get("columns", ()):
            batch[name] = torch.stack([item["columns"][name] for item in items])
        return batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of rows of similar length.

    Each epoch: shuffle all rows, cut them into pools of `pool_batches` batches, sort each
    pool by length, cut it into batches, shuffle the batches; the one short batch (when the
    rows do not fill the last) comes last, since accelerate deals batches out to several
    processes in turns and expects only the last to be short (one in the middle made it
    drop a turn's batches and repeat others). The order depends only on (seed, epoch), so
    a resumed run sees the batches an uninterrupted one would.
    """

    def __init__(self, lengths: "list[float]", batch_size: int, seed: int, pool_batches: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order `__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = order[start:start + self.pool]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches += [pool[i:i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        full = [batch for batch in batches if len(batch) == self.batch_size]
        for i in rng.permutation(len(full)):
            yield full[i]
        yield from (batch for batch in batches if len(batch) < self.batch_size)
