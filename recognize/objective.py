"""What training minimises, as a module called on each batch's logits: cross-entropy
against the labels, or, with a teacher (`--teacher`), a distillation loss of `distill.py`
against the teacher's outputs, which the batch carries (`teacher_logits`,
`teacher_embeddings`: computed once by `teacher.py`).

An objective may own parameters that train with the model but are not part of it: the
feature loss's projection of the student's vector to the teacher's width."""

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from recognize.config import ExperimentConfig
from recognize.distill import dist_loss, kd_loss, relational_feature_loss

TEACHER_LOGITS = "teacher_logits"
TEACHER_EMBEDDINGS = "teacher_embeddings"


class LabelObjective(nn.Module):
    """Cross-entropy against the batch's labels, optionally class-weighted."""

    needs_embedding = False

    def __init__(self, class_weights: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, embedding: Optional[torch.Tensor], batch: dict) -> torch.Tensor:
        """The mean loss of the batch."""
        return F.cross_entropy(logits.float(), batch["labels"], weight=self.class_weights)


class DistillObjective(LabelObjective):
    """`--distill kd|dist|feature` against a teacher's outputs (see `distill.py`):
    kd: (1 - w) * CE + w * tau^2 * KL; dist: CE + w * tau^2 * (inter + intra);
    feature: CE + w * relational loss between the teacher's vectors and the student's,
    projected to the teacher's width by a linear layer trained alongside."""

    def __init__(self, loss: str, weight: float, temperature: float, class_weights: Optional[torch.Tensor] = None,
                 student_width: int = 0, teacher_width: int = 0) -> None:
        super().__init__(class_weights)
        self.loss, self.weight, self.temperature = loss, weight, temperature
        self.needs_embedding = loss == "feature"
        self.projection = nn.Linear(student_width, teacher_width) if self.needs_embedding else None

    def forward(self, logits: torch.Tensor, embedding: Optional[torch.Tensor], batch: dict) -> torch.Tensor:
        """The mean loss of the batch."""
        logits, labels = logits.float(), batch["labels"]
        if self.loss == "kd":
            return kd_loss(logits, batch[TEACHER_LOGITS], labels, self.temperature, self.weight, self.class_weights)
        if self.loss == "dist":
            return dist_loss(logits, batch[TEACHER_LOGITS], labels, self.temperature, 1.0, self.weight, self.weight,
                             self.class_weights)
        hard = super().forward(logits, embedding, batch)
        student = self.projection(embedding.float())
        return hard + self.weight * relational_feature_loss(student, batch[TEACHER_EMBEDDINGS].float(), self.temperature)


def make_objective(config: ExperimentConfig, class_weights: Optional[torch.Tensor] = None,
                   student_width: int = 0, teacher_width: int = 0) -> LabelObjective:
    """The objective of a run of `config`: distillation with a teacher, else cross-entropy."""
    if not config.teacher:
        return LabelObjective(class_weights)
    return DistillObjective(config.distill, config.distill_weight, config.temperature, class_weights,
                            student_width, teacher_width)
