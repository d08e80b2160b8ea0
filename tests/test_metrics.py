"""The scores MELD papers report, against hand computations on small label lists."""

import pytest

from recognize.metrics import SCORES, classification_metrics, mean_and_std

LABELS = ("neutral", "joy", "anger", "fear")


def test_scores_equal_a_hand_computation():
    truth = [0, 0, 1, 2, 2, 2]
    guess = [0, 1, 1, 2, 2, 0]
    # per class (precision, recall): neutral 1/2, 1/2; joy 1/2, 1/1; anger 2/2, 2/3; fear absent from both
    f1 = {"neutral": 0.5, "joy": 2 / 3, "anger": 0.8, "fear": 0.0}
    metrics = classification_metrics(truth, guess, LABELS)

    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx((2 * 0.5 + 1 * 0.5 + 3 * 1.0) / 6)
    assert metrics["recall"] == pytest.approx((2 * 0.5 + 1 * 1.0 + 3 * 2 / 3) / 6)
    assert metrics["weighted_f1"] == pytest.approx((2 * f1["neutral"] + 1 * f1["joy"] + 3 * f1["anger"]) / 6)
    assert metrics["macro_f1"] == pytest.approx((f1["neutral"] + f1["joy"] + f1["anger"]) / 3)  # fear: no F1 to average
    assert {name: scores["f1"] for name, scores in metrics["per_class"].items()} == pytest.approx(f1)
    assert [scores["support"] for scores in metrics["per_class"].values()] == [2, 1, 3, 0]
    assert metrics["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert metrics["samples"] == 6


def test_a_class_only_predicted_counts_in_macro_f1_with_an_f1_of_zero():
    metrics = classification_metrics([0, 0, 1], [0, 3, 1], LABELS)  # fear predicted once, never true
    assert metrics["per_class"]["fear"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_every_row_right_scores_one_whatever_classes_the_split_lacks():
    metrics = classification_metrics([0, 1, 1, 2], [0, 1, 1, 2], LABELS)
    assert (metrics["accuracy"], metrics["weighted_f1"], metrics["macro_f1"]) == (1.0, 1.0, 1.0)


def test_scores_are_the_overall_keys_of_classification_metrics_in_order():
    metrics = classification_metrics([0, 1], [0, 1], LABELS)
    assert [key for key in metrics if key in SCORES] == list(SCORES)


def test_mean_and_std_give_the_sample_spread_and_none_for_one_value():
    assert mean_and_std([0.25, 0.5, 0.75]) == (0.5, 0.25)  # n - 1 in the denominator: (2 * 0.0625) / 2
    assert mean_and_std([0.6]) == (0.6, None)
