"""Distillation losses: a teacher's outputs guiding a student, each a pure function of
tensors. Logits are (B, C); `temperature` is tau; probabilities are softmax(z / tau).
`class_weights`, where given, weight the cross-entropy term as `--class-weights` does.
`objective.py` turns them into what `train --teacher --distill` minimises."""

from typing import Optional

import torch
from torch.nn import functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 2.0, weight: float = 0.5, class_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Knowledge distillation (Hinton et al., 2015):
    (1 - weight) * CE(z_s, y) + weight * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau)),
    the KL averaged over the batch. tau^2 keeps the soft term's gradients on the scale of
    the hard one's as tau grows."""
    soft_student = F.log_softmax(student_logits / temperature, dim=-1)
    soft_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels, weight=class_weights)
    return (1 - weight) * hard + weight * temperature ** 2 * divergence


def pearson_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 - Pearson correlation of the rows of `a` and `b` (each (N, K)), per row: (N,).
    A row with no spread (e.g. K = 1) has correlation 0 here, so distance 1 and no NaN."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    correlation = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)
    return 1 - correlation


def dist_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
              temperature: float = 1.0, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0,
              class_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """DIST (Huang et al., 2022), with Y = softmax(Z / tau) per sample:
    inter = mean over samples i of 1 - pearson(Y_s[i, :], Y_t[i, :]) (the classes' ranking per sample),
    intra = mean over classes j of 1 - pearson(Y_s[:, j], Y_t[:, j]) (the samples' ranking per class),
    total = alpha * CE(z_s, y) + beta * tau^2 * inter + gamma * tau^2 * intra.
    With one sample the intra term is the constant 1 (no spread across a batch of one)."""
    student = F.softmax(student_logits / temperature, dim=-1)
    teacher = F.softmax(teacher_logits / temperature, dim=-1)
    inter = pearson_distance(student, teacher).mean()
    intra = pearson_distance(student.T, teacher.T).mean()
    hard = F.cross_entropy(student_logits, labels, weight=class_weights)
    return alpha * hard + temperature ** 2 * (beta * inter + gamma * intra)


def relational_feature_loss(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor,
                            temperature: float = 1.0) -> torch.Tensor:
    """Feature (relational) distillation after TelME: with t_i, s_i the teacher and student
    embeddings (the student's already projected to the teacher's width), each centred on its
    batch mean and L2-normalised, P = row-softmax(T T^T / tau) (how each teacher embedding
    relates to the batch's teacher embeddings) and Q = row-softmax(T S^T / tau) (how it
    relates to the batch's student embeddings), the loss is KL(P || Q), averaged over the
    rows: TelME's orientation, in which row i of Q is a distribution over the students.

    The centring is this toolkit's addition: pooled transformer vectors share one dominant
    direction (a tiny BERT's mean-pooled vectors have cosine 0.99 with each other), which
    makes every uncentred similarity equal and the loss vanish whatever the student does."""
    teacher = F.normalize(teacher_embeddings - teacher_embeddings.mean(0), dim=-1)
    student = F.normalize(student_embeddings - student_embeddings.mean(0), dim=-1)
    target = F.log_softmax(teacher @ teacher.T / temperature, dim=-1)
    predicted = F.log_softmax(teacher @ student.T / temperature, dim=-1)
    return F.kl_div(predicted, target, reduction="batchmean", log_target=True)
