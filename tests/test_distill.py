"""Distillation losses against hand computations on small tensors (plain Python sums), their
gradients pulling the student towards the teacher, and DIST on a batch of one."""

import math

import pytest
import torch

from recognize.distill import dist_loss, kd_loss, relational_feature_loss

STUDENT = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
TEACHER = [[2.0, 0.5, -0.5], [0.0, 1.0, 1.5]]
LABELS = [0, 1]


def softmax(row: list[float], tau: float = 1.0) -> list[float]:
    """softmax(row / tau), by hand."""
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def pearson(a: list[float], b: list[float]) -> float:
    """Pearson correlation, by hand."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / (math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b)))


def cross_entropy(rows: list[list[float]], labels: list[int]) -> float:
    """Mean cross-entropy, by hand."""
    return sum(-math.log(softmax(row)[y]) for row, y in zip(rows, labels)) / len(rows)


def tensors(*rows):
    """float64 tensors of the given rows, the first one requiring a gradient."""
    first, *rest = (torch.tensor(r, dtype=torch.float64) for r in rows)
    return (first.requires_grad_(), *rest)


def test_kd_is_cross_entropy_plus_tau_squared_kl_of_the_softened_distributions():
    tau, weight = 2.0, 0.3
    kl = sum(sum(p * math.log(p / q) for p, q in zip(softmax(t, tau), softmax(s, tau))) for s, t in zip(STUDENT, TEACHER)) / 2
    expected = (1 - weight) * cross_entropy(STUDENT, LABELS) + weight * tau ** 2 * kl
    student, teacher = tensors(STUDENT, TEACHER)
    assert kd_loss(student, teacher, torch.tensor(LABELS), tau, weight).item() == pytest.approx(expected, rel=1e-12)


def test_dist_is_ce_plus_inter_and_intra_class_pearson_distances():
    tau, alpha, beta, gamma = 1.5, 0.7, 2.0, 0.5
    ys = [softmax(r, tau) for r in STUDENT]
    yt = [softmax(r, tau) for r in TEACHER]
    inter = sum(1 - pearson(s, t) for s, t in zip(ys, yt)) / 2
    intra = sum(1 - pearson([r[j] for r in ys], [r[j] for r in yt]) for j in range(3)) / 3
    expected = alpha * cross_entropy(STUDENT, LABELS) + beta * tau ** 2 * inter + gamma * tau ** 2 * intra
    student, teacher = tensors(STUDENT, TEACHER)
    loss = dist_loss(student, teacher, torch.tensor(LABELS), tau, alpha, beta, gamma)
    assert loss.item() == pytest.approx(expected, rel=1e-5)  # the 1e-8 guard in the Pearson denominator


def test_relational_feature_loss_is_kl_between_teacher_and_cross_similarities():
    s_rows, t_rows, tau = [[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, -1.0], [-0.5, 0.5]], 0.5

    def unit(v):
        return [x / math.sqrt(sum(y * y for y in v)) for x in v]

    s, t = [unit(v) for v in s_rows], [unit(v) for v in t_rows]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    expected = 0.0
    for i in range(3):
        p = softmax([dot(t[i], t[j]) for j in range(3)], tau)
        q = softmax([dot(s[i], t[j]) for j in range(3)], tau)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) / 3
    student, teacher = tensors(s_rows, t_rows)
    assert relational_feature_loss(student, teacher, tau).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("loss", ["kd", "dist", "feature"])
def test_a_gradient_step_moves_the_student_towards_the_teacher(loss):
    torch.manual_seed(0)
    teacher = torch.randn(6, 4, dtype=torch.float64)
    student = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    labels = teacher.argmax(-1)
    compute = {
        "kd": lambda s: kd_loss(s, teacher, labels, 2.0, weight=1.0),  # the soft term alone
        "dist": lambda s: dist_loss(s, teacher, labels, 1.0, alpha=0.0),
        "feature": lambda s: relational_feature_loss(s, teacher, 0.5),
    }[loss]
    before = compute(student)
    before.backward()
    with torch.no_grad():
        stepped = student - 0.05 * student.grad
    assert compute(stepped) < before  # the gradient points away from the teacher: descending it gets closer
    assert compute(teacher.clone()) <= before  # a student equal to the teacher is no worse off


def test_dist_on_a_batch_of_one_has_no_nan_and_a_finite_gradient():
    student = torch.tensor([[0.3, -0.2, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = dist_loss(student, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
