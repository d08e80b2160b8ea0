"""Preprocessed utterances as a torch Dataset, their collation into padded batches, and
length-grouped batching (similar lengths together, so dynamic padding wastes little)."""

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from recognize.dataset.text import TextEncoding, pad_text


class UtteranceDataset(Dataset):
    """Rows of one split, each with its label and its preprocessed input per modality."""

    def __init__(self, labels: np.ndarray, text: "list[TextEncoding] | None" = None) -> None:
        self.labels = labels
        self.text = text

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {"index": index, "label": int(self.labels[index])}
        if self.text is not None:
            item["T"] = self.text[index]
        return item

    def lengths(self) -> list[int]:
        """A size per row that drives length grouping: its token count (1 when it has no text)."""
        if self.text is None:
            return [1] * len(self)
        return [len(e["input_ids"]) for e in self.text]


@dataclass
class Collator:
    """Turns a list of dataset items into one batch: {"T": padded text, "labels", "index"}."""

    pad_token_id: int = 0

    def __call__(self, items: list[dict]) -> dict:
        batch = {
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
        }
        if "T" in items[0]:
            batch["T"] = pad_text([item["T"] for item in items], self.pad_token_id)
        return batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of rows of similar length.

    Each epoch: shuffle all rows, cut them into pools of `pool_batches` batches, sort each
    pool by length, cut it into batches, shuffle the batches. The order depends only on
    (seed, epoch), so a resumed run sees the batches an uninterrupted one would.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, pool_batches: int = 50) -> None:
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
        for i in rng.permutation(len(batches)):
            yield batches[i]
