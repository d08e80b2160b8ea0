"""EmotionModel: one encoder per modality, their pooled vectors fused (several modalities:
a network of `fusion.py`), then a classification head.

A row whose clip of modality m is missing (the batch's `{m}_present` is False) was fed
zeros; its pooled vector of m is masked to zero, so it carries no made-up evidence: a
unimodal model then predicts from the head's bias alone (the training prior)."""

import torch
from torch import nn


class EmotionModel(nn.Module):
    """encoders[m](batch[m]) -> pooled vectors -> fusion (when given) -> head -> logits over
    the task's classes. Without a fusion (one modality) the head reads the pooled vector."""

    def __init__(self, encoders: dict[str, nn.Module], num_labels: int, dropout: float,
                 fusion: "nn.Module | None" = None) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion
        width = fusion.output_size if fusion is not None else sum(e.output_size for e in self.encoders.values())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_labels))
        self.frozen_encoders = False

    def encode(self, batch: dict) -> dict[str, torch.Tensor]:
        """The pooled vector (B, D_m) of every modality in the batch, zero for rows marked
        absent by `{m}_present`; taken from `{m}_features` when the batch carries the
        encoder's cached output (frozen mode, `cache.py`)."""
        pooled = {}
        for modality, encoder in self.encoders.items():
            cached = batch.get(f"{modality}_features")
            vector = encoder(batch[modality]) if cached is None else cached
            present = batch.get(f"{modality}_present")
            pooled[modality] = vector if present is None else vector * present.to(vector.dtype).unsqueeze(-1)
        return pooled

    def forward(self, batch: dict, with_embedding: bool = False) -> "torch.Tensor | tuple[torch.Tensor, torch.Tensor]":
        """The logits (B, C); with `with_embedding`, also the vector the head reads (B, D): the
        fused vector, or a single modality's pooled one (what feature distillation compares)."""
        pooled = self.encode(batch)
        vectors = [pooled[m] for m in self.encoders]
        if self.fusion is None:
            embedding = torch.cat(vectors, dim=-1)
        else:
            embedding = self.fusion(vectors, [batch.get(f"{m}_present") for m in self.encoders])
        logits = self.head(embedding)
        return (logits, embedding) if with_embedding else logits

    @property
    def embedding_size(self) -> int:
        """The width of the vector the head reads."""
        return self.head[-1].in_features

    def train(self, mode: bool = True) -> "EmotionModel":
        """As nn.Module.train, except that frozen encoders always stay in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen_encoders:
            self.encoders.eval()
        return self
