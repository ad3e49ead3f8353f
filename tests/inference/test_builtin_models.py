"""Each built-in model answers correctly through gRPC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from tests.inference.rows import predict_request

IRIS_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_iris_knn_known_rows(inference_stub) -> None:
    iris = load_iris()
    # The first, a middle and the last row of each species in the data set.
    picks = [0, 25, 49, 50, 75, 99, 100, 125, 149]
    rows = [dict(zip(IRIS_NAMES, iris.data[i].tolist())) for i in picks]
    response = inference_stub.Predict(predict_request("iris-knn", rows), timeout=10)
    assert response.model == "iris-knn" and response.version == "1"
    got = [p.classification.label for p in response.predictions]
    assert got == [str(iris.target_names[iris.target[i]]) for i in picks]
    for prediction in response.predictions:
        probabilities = [p.probability for p in prediction.classification.probabilities]
        assert [p.label for p in prediction.classification.probabilities] == ["setosa", "versicolor", "virginica"]
        assert sum(probabilities) == pytest.approx(1.0)
        assert prediction.classification.score == max(probabilities)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I absolutely love this phone, the battery life is amazing!", "positive"),
        ("What a wonderful, heartwarming film. Beautifully acted.", "positive"),
        ("This is the worst purchase I have ever made. Total garbage, it broke in a day.", "negative"),
        ("The service was terrible and the food was disgusting.", "negative"),
    ],
)
def test_sentiment_clear_sentences(inference_stub, text: str, label: str) -> None:
    response = inference_stub.Predict(predict_request("sentiment", [{"text": text}]), timeout=10)
    classification = response.predictions[0].classification
    assert classification.label == label
    assert classification.score > 0.6
    assert [p.label for p in classification.probabilities] == ["negative", "neutral", "positive"]


def test_regression_gp_variance_grows_away_from_training_data(inference_stub) -> None:
    typical = {"age": 50.0, "bmi": 26.0, "bp": 94.0, "s5": 4.6}  # near the middle of the data
    far = {"age": 95.0, "bmi": 60.0, "bp": 200.0, "s5": 8.0}  # well outside it
    farther = {"age": 140.0, "bmi": 95.0, "bp": 320.0, "s5": 12.0}
    response = inference_stub.Predict(predict_request("regression-gp", [typical, far, farther]), timeout=10)
    variances = [p.regression.variance for p in response.predictions]
    assert variances[0] < variances[1] < variances[2]
    for p in response.predictions:
        assert p.regression.standard_deviation == pytest.approx(np.sqrt(p.regression.variance))
    assert 25 < response.predictions[0].regression.value < 346  # within the target's range


def test_risk_on_held_out_like_rows(inference_stub) -> None:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    rows = [dict(zip(names, data.data[i].tolist())) for i in range(40)]
    response = inference_stub.Predict(predict_request("risk", rows), timeout=10)
    expected = [str(data.target_names[t]) for t in data.target[:40]]
    got = [p.classification.label for p in response.predictions]
    assert np.mean([g == e for g, e in zip(got, expected)]) >= 0.95


def test_list_and_get_models(inference_stub) -> None:
    from protoserve.common.v1 import model_pb2
    from protoserve.inference.v1 import inference_service_pb2 as pb

    listed = inference_stub.ListModels(pb.ListModelsRequest(), timeout=10)
    assert [m.name for m in listed.models] == ["iris-knn", "regression-gp", "risk", "sentiment"]
    for summary in listed.models:
        assert summary.default_version == "1"
        assert [v.state for v in summary.versions] == [model_pb2.MODEL_VERSION_STATE_READY]
    card = inference_stub.GetModel(pb.GetModelRequest(model="iris-knn"), timeout=10).card
    assert card.task == model_pb2.TASK_CLASSIFICATION
    assert [f.name for f in card.inputs] == IRIS_NAMES
    assert list(card.labels) == ["setosa", "versicolor", "virginica"]
    assert {m.name for m in card.metrics} >= {"accuracy", "f1_macro"}
    gp = inference_stub.GetModel(pb.GetModelRequest(model="regression-gp", version="1"), timeout=10).card
    assert gp.task == model_pb2.TASK_REGRESSION and {m.name for m in gp.metrics} >= {"rmse"}
    sentiment = inference_stub.GetModel(pb.GetModelRequest(model="sentiment"), timeout=10).card
    assert "MIT" in sentiment.training_data
