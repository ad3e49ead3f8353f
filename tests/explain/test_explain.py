"""Explanations through gRPC: they add up to the model's output, and they make sense."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from protoserve.explain.v1 import explain_service_pb2 as pb

from explain_svc.methods import build_method
from explain_svc.settings import ExplainSettings
from protoserve_models.model import LoadedModel
from protoserve_models.repository import ModelRepository
from tests.explain.calls import additivity_gap, attribution, explain_request

EXACT = 1e-6
# Permutation SHAP is additive by construction (each permutation telescopes), so only rounding is left.


def local_model(model_repository: Path, name: str) -> LoadedModel:
    repository = ModelRepository(model_repository)
    repository.load(name, "1")
    return repository.get(name)


def reference_rows(model: LoadedModel, count: int, start: int = 0) -> list[dict[str, Any]]:
    sample = model.card.reference_sample
    return [{n: sample[n][i] for n in model.card.feature_names} for i in range(start, start + count)]


def test_risk_tree_shap_adds_up_to_the_margin(explain_stub, model_repository: Path) -> None:
    model = local_model(model_repository, "risk")
    rows = reference_rows(model, 5)
    answer = explain_stub.Explain(explain_request("risk", rows, label="malignant"), timeout=30)
    assert answer.method == pb.EXPLANATION_METHOD_TREE_SHAP
    assert answer.output_space == pb.OUTPUT_SPACE_MARGIN
    inputs = np.array([[row[n] for n in model.card.feature_names] for row in rows])
    margins = model.estimator.decision_function(inputs)  # log-odds of classes_[1]
    sign = 1.0 if list(model.estimator.classes_).index("malignant") == 1 else -1.0
    for row, margin in zip(answer.explanations, margins):
        assert row.label == "malignant"
        assert len(row.attributions) == 30 and row.omitted_count == 0
        assert additivity_gap(row) < EXACT
        assert row.output_value == pytest.approx(sign * margin, abs=EXACT)
        probability = next(p.probability for p in row.prediction.classification.probabilities if p.label == "malignant")
        assert probability == pytest.approx(1 / (1 + math.exp(-row.output_value)), abs=EXACT)


def test_sentiment_linear_shap_adds_up_per_token(explain_stub, model_repository: Path) -> None:
    model = local_model(model_repository, "sentiment")
    texts = ["The food was terrible and the service slow.", "What a wonderful, wonderful day!", "ok"]
    answer = explain_stub.Explain(explain_request("sentiment", [{"text": t} for t in texts]), timeout=30)
    assert answer.method == pb.EXPLANATION_METHOD_LINEAR_SHAP
    assert answer.output_space == pb.OUTPUT_SPACE_MARGIN
    scores = model.estimator.decision_function(np.array(texts, dtype=object))
    classes = list(model.estimator.classes_)
    for text, row, score in zip(texts, answer.explanations, scores):
        assert row.label == row.prediction.classification.label  # the predicted label by default
        assert additivity_gap(row) < EXACT
        assert row.output_value == pytest.approx(score[classes.index(row.label)], abs=EXACT)
        for a in row.attributions:
            if a.kind == pb.ATTRIBUTION_KIND_TOKEN:
                assert text[a.start : a.end] == a.name
    kinds = {a.name: a.kind for a in answer.explanations[0].attributions}
    assert kinds["terrible"] == pb.ATTRIBUTION_KIND_TOKEN
    assert kinds["vader_compound"] == pb.ATTRIBUTION_KIND_DERIVED
    # The empty text is the background: its output is the base value.
    empty = model.estimator.decision_function(np.array([""], dtype=object))[0]
    first = answer.explanations[0]
    assert first.base_value == pytest.approx(empty[classes.index(first.label)], abs=EXACT)
    wonderful = [a for a in answer.explanations[1].attributions if a.name.lower() == "wonderful"]
    assert len(wonderful) == 2 and wonderful[0].start != wonderful[1].start


@pytest.mark.parametrize(
    ("model", "space"),
    [("iris-knn", pb.OUTPUT_SPACE_PROBABILITY), ("regression-gp", pb.OUTPUT_SPACE_VALUE)],
)
def test_exact_shap_adds_up_to_the_prediction(explain_stub, model_repository: Path, model: str, space: int) -> None:
    loaded = local_model(model_repository, model)
    size = len(loaded.card.reference_sample[loaded.card.feature_names[0]])
    rows = reference_rows(loaded, 3, start=size - 3)  # the last rows: past the background's
    answer = explain_stub.Explain(explain_request(model, rows), timeout=60)
    assert answer.method == pb.EXPLANATION_METHOD_EXACT_SHAP
    assert answer.output_space == space
    assert "reference sample" in answer.background
    for row in answer.explanations:
        scale = max(1.0, abs(row.output_value))
        assert additivity_gap(row) < EXACT * scale
        if space == pb.OUTPUT_SPACE_PROBABILITY:
            classification = row.prediction.classification
            assert row.label == classification.label
            assert row.output_value == pytest.approx(classification.score, abs=EXACT)
        else:
            assert row.label == ""
            assert row.output_value == pytest.approx(row.prediction.regression.value, abs=EXACT * scale)
    again = explain_stub.Explain(explain_request(model, rows), timeout=60)
    assert again == answer, "the same rows get the same explanation"


def test_top_k_keeps_the_largest_and_still_adds_up(explain_stub, model_repository: Path) -> None:
    rows = reference_rows(local_model(model_repository, "risk"), 1)
    full = explain_stub.Explain(explain_request("risk", rows), timeout=30).explanations[0]
    cut = explain_stub.Explain(explain_request("risk", rows, top_k=3), timeout=30).explanations[0]
    assert [a.name for a in cut.attributions] == [a.name for a in full.attributions[:3]]
    magnitudes = [abs(a.value) for a in full.attributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert cut.omitted_count == 27
    assert additivity_gap(cut) < EXACT


def test_risk_top_ranked_feature_moves_the_prediction_more_than_the_lowest(explain_stub, model_repository: Path) -> None:
    model = local_model(model_repository, "risk")
    medians = {n: float(np.median(v)) for n, v in model.card.reference_sample.items()}
    for row in reference_rows(model, 3):
        explained = explain_stub.Explain(explain_request("risk", [row], label="malignant"), timeout=30).explanations[0]
        top, low = explained.attributions[0].name, explained.attributions[-1].name

        def margin_with(name: str, value: float, row: dict[str, Any] = row) -> float:
            changed = explain_request("risk", [{**row, name: value}], label="malignant")
            return explain_stub.Explain(changed, timeout=30).explanations[0].output_value

        # Each feature is moved to the far side of the training median from where the row has it.
        spread = {n: max(abs(row[n] - medians[n]), 1e-3) for n in (top, low)}
        top_move = abs(margin_with(top, medians[top] - 2 * (row[top] - medians[top])) - explained.output_value)
        low_move = abs(margin_with(low, row[low] + 2 * spread[low]) - explained.output_value)
        assert top_move > low_move, (top, top_move, low, low_move)


def test_sentiment_terrible_counts_against_positive(explain_stub) -> None:
    text = "The plot was terrible."
    row = explain_stub.Explain(explain_request("sentiment", [{"text": text}], label="positive"), timeout=30).explanations[0]
    assert row.label == "positive"
    terrible = attribution(row, "terrible")
    assert terrible.value < 0
    assert (terrible.start, terrible.end) == (13, 21)
    toward_negative = explain_stub.Explain(explain_request("sentiment", [{"text": text}], label="negative"), timeout=30)
    assert attribution(toward_negative.explanations[0], "terrible").value > 0


def test_sentiment_explainer_predicts_exactly_as_the_model(model_repository: Path) -> None:
    """The explainer makes the text's features and the probabilities its own cheaper way; they
    must be the pipeline's to the last bit."""
    model = local_model(model_repository, "sentiment")
    method = build_method(model, ExplainSettings())
    texts = np.array(["The food was terrible and the service slow. :(", "What a wonderful day!", "", "ok ok OK"], dtype=object)
    predictions, rows = method.predict_and_explain(texts, "")
    expected = model.classification(model.estimator.predict_proba(texts))
    assert np.array_equal(predictions.probabilities, expected.probabilities)
    margins = model.estimator.decision_function(texts)
    classes = list(model.estimator.classes_)
    for row, margin in zip(rows, margins):
        assert row.output_value == margin[classes.index(row.label)]
