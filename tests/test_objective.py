"""The focal loss (`--focal-gamma`) against a direct computation of Lin et al.'s formula."""

import pytest
import torch
from torch.nn import functional as F

from recognize import ExperimentConfig
from recognize.objective import LabelObjective, make_objective


def batch_of_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """Six rows of seven classes' logits and their labels (class 2 twice)."""
    torch.manual_seed(0)
    return torch.randn(6, 7) * 2, torch.tensor([0, 3, 6, 2, 2, 5])


def test_focal_loss_is_the_cross_entropy_times_one_minus_p_to_the_gamma():
    logits, labels = batch_of_logits()
    p = F.softmax(logits, dim=-1)[torch.arange(6), labels]
    direct = ((1 - p) ** 2 * -torch.log(p)).mean()
    focal = LabelObjective(focal_gamma=2.0)(logits, None, {"labels": labels})
    assert focal.item() == pytest.approx(direct.item(), rel=1e-6)
    assert focal.item() < LabelObjective()(logits, None, {"labels": labels}).item()


def test_weighted_focal_loss_divides_by_the_rows_class_weights():
    logits, labels = batch_of_logits()
    weights = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 1.5, 4.0])
    p = F.softmax(logits, dim=-1)[torch.arange(6), labels]
    row_weights = weights[labels]
    direct = (row_weights * (1 - p) ** 0.5 * -torch.log(p)).sum() / row_weights.sum()
    focal = LabelObjective(weights, focal_gamma=0.5)(logits, None, {"labels": labels})
    assert focal.item() == pytest.approx(direct.item(), rel=1e-6)


def test_focal_loss_with_smoothing_modulates_the_smoothed_cross_entropy():
    logits, labels = batch_of_logits()
    log_p = F.log_softmax(logits, dim=-1)
    p = log_p.exp()[torch.arange(6), labels]
    smoothed = 0.9 * -log_p[torch.arange(6), labels] + 0.1 * -log_p.mean(dim=-1)
    direct = ((1 - p) * smoothed).mean()
    focal = LabelObjective(label_smoothing=0.1, focal_gamma=1.0)(logits, None, {"labels": labels})
    assert focal.item() == pytest.approx(direct.item(), rel=1e-6)


def test_the_focal_gradient_leaves_confident_right_rows_nearly_alone():
    logits = torch.tensor([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    LabelObjective(focal_gamma=2.0)(logits, None, {"labels": torch.tensor([0, 0])}).backward()
    confident, unsure = logits.grad.norm(dim=-1)
    assert confident < 1e-5 * unsure


def test_the_run_objective_takes_the_configs_gamma(meld_dir, tiny_bert):
    config = ExperimentConfig(data=str(meld_dir), text_model=str(tiny_bert), focal_gamma=2.0)
    assert make_objective(config).focal_gamma == 2.0
