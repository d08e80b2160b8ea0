"""What training minimises, as a module called on each batch's logits: cross-entropy
against the labels, or, with a teacher (`--teacher`), a distillation loss of `distill.py`
against the teacher's outputs, which the batch carries (`teacher_logits`,
`teacher_embeddings`: computed once by `teacher.py`).

An objective may own parameters that train with the model but are not part of it: the
feature loss's projection of the student's vector to the teacher's width.

A loss of your own is a subclass of `LabelObjective` whose `forward(logits, embedding,
batch)` returns the batch's mean loss (`batch["labels"]` holds the class indices). The
engine also reads `needs_embedding` (True: `embedding` is the vector the head reads, else
None), `class_weights` and `normaliser(batch)`, the denominator of that mean (override it
with `row_count` when the mean is over rows, not class weights). `train` builds the
objective here, in `make_objective`, from the config: choose the new loss by a field of
`ExperimentConfig`, which is then a `train` flag, saved in config.json and told apart by
`report`."""

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from recognize.config import ExperimentConfig
from recognize.distill import dist_loss, kd_loss, relational_feature_loss

TEACHER_LOGITS = "teacher_logits"
TEACHER_EMBEDDINGS = "teacher_embeddings"


class LabelObjective(nn.Module):
    """Cross-entropy against the batch's labels, optionally class-weighted, optionally with
    label smoothing (the target is 1 - s on the label plus s / K on each of the K classes),
    optionally focal (Lin et al., 2017: each row's cross-entropy times (1 - p)^gamma, p the
    probability the model gives its label, so that rows it already gets right weigh less)."""

    needs_embedding = False

    def __init__(self, class_weights: Optional[torch.Tensor] = None, label_smoothing: float = 0.0,
                 focal_gamma: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma

    def forward(self, logits: torch.Tensor, embedding: Optional[torch.Tensor], batch: dict) -> torch.Tensor:
        """The mean loss of the batch (over its rows' class weights when weighted, as PyTorch's
        weighted cross-entropy divides)."""
        logits, labels = logits.float(), batch["labels"]
        if not self.focal_gamma:
            return F.cross_entropy(logits, labels, weight=self.class_weights, label_smoothing=self.label_smoothing)
        per_row = F.cross_entropy(logits, labels, weight=self.class_weights, label_smoothing=self.label_smoothing,
                                  reduction="none")
        label_probability = logits.softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)
        return ((1.0 - label_probability) ** self.focal_gamma * per_row).sum() / self.normaliser(batch)

    def normaliser(self, batch: dict) -> torch.Tensor:
        """The denominator of the batch's mean loss: its rows' class weights summed (PyTorch's
        weighted cross-entropy divides by them), else its row count. Gradient accumulation
        sums each batch's loss times this and divides by the window's total, so a window
        steps as one batch of all its rows would."""
        if self.class_weights is None:
            return row_count(batch)
        return self.class_weights[batch["labels"]].sum()


def row_count(batch: dict) -> torch.Tensor:
    """The batch's number of rows as a float32 scalar on its device (a fill there, no copy from the host)."""
    labels = batch["labels"]
    return labels.new_full((), len(labels), dtype=torch.float32)


class DistillObjective(LabelObjective):
    """`--distill` against a teacher's outputs (see `distill.py`): a response term on the class
    scores, a feature term on the head's input vectors, or both (`kd+feature`, `dist+feature`).
    `response` = (loss, w, tau): kd is (1 - w) * CE + w * tau^2 * KL, dist is CE + w * tau^2 *
    (inter + intra); without one, CE. `feature` = (w_f, tau_f) adds w_f * the relational loss
    between the teacher's vectors and the student's, projected to the teacher's width by a
    linear layer trained alongside."""

    def __init__(self, response: Optional[tuple[str, float, float]], feature: Optional[tuple[float, float]],
                 class_weights: Optional[torch.Tensor] = None, student_width: int = 0, teacher_width: int = 0) -> None:
        super().__init__(class_weights)
        self.response, self.feature = response, feature
        self.needs_embedding = feature is not None
        self.projection = nn.Linear(student_width, teacher_width) if self.needs_embedding else None

    def normaliser(self, batch: dict) -> torch.Tensor:
        """The batch's row count: the distillation terms are means over rows (DIST and the
        feature loss relate a batch's rows to one another, so no window of batches equals one
        batch of its rows), and a window weights its batches by their rows."""
        return row_count(batch)

    def forward(self, logits: torch.Tensor, embedding: Optional[torch.Tensor], batch: dict) -> torch.Tensor:
        """The mean loss of the batch."""
        logits, labels = logits.float(), batch["labels"]
        if self.response is None:
            loss = super().forward(logits, embedding, batch)
        elif self.response[0] == "kd":
            _, weight, temperature = self.response
            loss = kd_loss(logits, batch[TEACHER_LOGITS], labels, temperature, weight, self.class_weights)
        else:
            _, weight, temperature = self.response
            loss = dist_loss(logits, batch[TEACHER_LOGITS], labels, temperature, 1.0, weight, weight, self.class_weights)
        if self.feature is not None:
            weight, temperature = self.feature
            student = self.projection(embedding.float())
            loss = loss + weight * relational_feature_loss(student, batch[TEACHER_EMBEDDINGS].float(), temperature)
        return loss


def make_objective(config: ExperimentConfig, class_weights: Optional[torch.Tensor] = None,
                   student_width: int = 0, teacher_width: int = 0) -> LabelObjective:
    """The objective of a run of `config`: distillation with a teacher, else cross-entropy."""
    if not config.teacher:
        return LabelObjective(class_weights, config.label_smoothing, config.focal_gamma)
    if config.distill == "feature":  # the feature loss alone: --distill-weight and --temperature are its own
        return DistillObjective(None, (config.distill_weight, config.temperature), class_weights, student_width, teacher_width)
    response = (config.response_loss, config.distill_weight, config.temperature)
    feature = (config.feature_weight, config.feature_temperature) if config.feature_distillation else None
    return DistillObjective(response, feature, class_weights, student_width, teacher_width)
