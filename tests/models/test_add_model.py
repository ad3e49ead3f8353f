"""Each shape of model users fit is added, loaded back by the repository and answers JSON-form
rows exactly as the estimator answers the same rows locally."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_linnerud, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from protoserve_models.adding import add_model
from protoserve_models.builtin.sentiment_data import load_sentiment_corpus
from protoserve_models.card import ModelCard
from protoserve_models.model_files import ModelFileError
from tests.models.conftest import NUMERIC, answer, json_rows, labels_of, load


def penguin_pipeline(penguins: pd.DataFrame):
    features = penguins[NUMERIC + ["island", "sex"]]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ("categories", OneHotEncoder(handle_unknown="ignore"), ["island", "sex"]),
    ])
    return make_pipeline(columns, LogisticRegression(max_iter=1_000)).fit(features, penguins["species"])


def test_column_transformer_pipeline_on_penguins(tmp_path: Path, penguins: pd.DataFrame) -> None:
    model = penguin_pipeline(penguins)
    directory = add_model("penguins", model, penguins, "species", tmp_path)
    assert directory == tmp_path / "penguins" / "1"
    card = ModelCard.read(directory)
    assert card.input_format == "dataframe" and card.task == "classification" and card.probabilities
    by_name = {f.name: f for f in card.inputs}
    assert by_name["island"].type == "categorical" and by_name["island"].categories == ("Biscoe", "Dream", "Torgersen")
    assert by_name["sex"].nullable and not by_name["island"].nullable and by_name["bill_length_mm"].nullable
    assert set(card.metrics) == {"accuracy", "f1"} and card.metrics["accuracy"] > 0.9
    assert len(card.reference_sample["island"]) == 200 and None in card.reference_sample["sex"]
    served = load(tmp_path, "penguins")
    rows = penguins[NUMERIC + ["island", "sex"]]
    outputs = answer(served, json_rows(rows))
    assert labels_of(served, outputs) == list(model.predict(rows))
    assert np.allclose(outputs.probabilities, model.predict_proba(rows), rtol=1e-12)
    # An island the model never saw passes through (the encoder ignores it), as it would locally.
    odd = rows.iloc[:3].assign(island="Atlantis")
    assert labels_of(served, answer(served, json_rows(odd))) == list(model.predict(odd))


def test_gradient_boosting_on_category_columns(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.astype({"island": "category", "sex": "category"})
    features = frame[NUMERIC + ["island", "sex", "year"]]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=20, random_state=0)
    model.fit(features, frame["species"])
    card = ModelCard.read(add_model("penguins-hgb", model, frame, "species", tmp_path))
    assert {f.name: f.dtype for f in card.inputs}["island"] == "category"
    served = load(tmp_path, "penguins-hgb")
    assert labels_of(served, answer(served, json_rows(features))) == list(model.predict(features))


def test_random_forest_regressor(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True).frame
    features = data.drop(columns="target")
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(features, data["target"])
    card = ModelCard.read(add_model("diabetes", model, data, "target", tmp_path))
    assert card.task == "regression" and card.outputs == () and {"r2", "rmse", "mae"} <= set(card.metrics)
    outputs = answer(load(tmp_path, "diabetes"), json_rows(features))
    assert outputs.values is not None and outputs.values.shape == (len(features),)
    np.testing.assert_allclose(outputs.values, model.predict(features), rtol=1e-9)


def test_svc_without_probabilities_answers_labels_and_scores(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    frame = data.frame.assign(target=[str(data.target_names[t]) for t in data.target])
    features = frame.drop(columns="target")
    model = make_pipeline(StandardScaler(), SVC()).fit(features, frame["target"])
    card = ModelCard.read(add_model("wine", model, frame, "target", tmp_path))
    assert not card.probabilities and card.decision_scores
    served = load(tmp_path, "wine")
    outputs = answer(served, json_rows(features))
    assert outputs.probabilities is None
    assert labels_of(served, outputs) == list(model.predict(features))
    np.testing.assert_allclose(outputs.scores, model.decision_function(features), rtol=1e-9)


def test_isolation_forest(tmp_path: Path) -> None:
    features = load_breast_cancer(as_frame=True).data
    model = IsolationForest(n_estimators=20, random_state=0).fit(features)
    card = ModelCard.read(add_model("cells-outliers", model, features, None, tmp_path))
    assert card.task == "anomaly_detection" and card.labels == ("inlier", "outlier")
    outputs = answer(load(tmp_path, "cells-outliers"), json_rows(features))
    assert outputs.label_indices is not None
    assert list(outputs.label_indices) == [0 if p == 1 else 1 for p in model.predict(features)]
    assert 0 < outputs.label_indices.sum() < len(features)
    np.testing.assert_allclose(outputs.scores, model.decision_function(features), rtol=1e-9)


def test_kmeans(tmp_path: Path) -> None:
    features = load_iris(as_frame=True).data
    model = KMeans(n_clusters=3, n_init=3, random_state=0).fit(features)
    card = ModelCard.read(add_model("iris-clusters", model, features, None, tmp_path))
    assert card.task == "clustering" and card.labels == ("0", "1", "2")
    outputs = answer(load(tmp_path, "iris-clusters"), json_rows(features))
    assert list(outputs.label_indices) == list(model.predict(features))


def test_text_pipeline_on_strings(tmp_path: Path) -> None:
    corpus = load_sentiment_corpus(threshold=0.5)
    texts, labels = np.array(corpus.texts[:600], dtype=object), corpus.labels[:600]
    model = make_pipeline(TfidfVectorizer(), LinearSVC()).fit(texts, labels)
    sample = pd.DataFrame({"text": texts, "label": labels})
    card = ModelCard.read(add_model("reviews", model, sample, "label", tmp_path))
    assert card.is_text and card.inputs[0].type == "string" and not card.probabilities
    served = load(tmp_path, "reviews")
    rows = [{"text": t} for t in texts[:100]] + [{"text": "a sentence the model never saw"}]
    expected = model.predict(np.array([r["text"] for r in rows], dtype=object))
    assert labels_of(served, answer(served, rows)) == list(expected)


def test_integer_and_boolean_columns(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.dropna().assign(male=lambda f: f["sex"] == "male")
    features = frame[["bill_length_mm", "flipper_length_mm", "year", "male"]]
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(features, frame["species"])
    card = ModelCard.read(add_model("penguins-tree", model, frame, "species", tmp_path))
    assert [(f.type, f.dtype) for f in card.inputs] == [
        ("double", "float64"), ("double", "float64"), ("integer", "int64"), ("boolean", "bool")]
    served = load(tmp_path, "penguins-tree")
    rows = json_rows(features)
    assert isinstance(rows[0]["year"], int) and isinstance(rows[0]["male"], bool)
    assert labels_of(served, answer(served, rows)) == list(model.predict(features))


def test_multi_output_ridge(tmp_path: Path) -> None:
    data = load_linnerud(as_frame=True)
    frame = pd.concat([data.data, data.target], axis=1)
    model = Ridge().fit(data.data, data.target)
    card = ModelCard.read(add_model("linnerud", model, frame, "Weight,Waist,Pulse", tmp_path))
    assert card.outputs == ("Weight", "Waist", "Pulse")
    outputs = answer(load(tmp_path, "linnerud"), json_rows(data.data))
    assert outputs.values is not None and outputs.values.shape == (len(frame), 3)
    np.testing.assert_allclose(outputs.values, model.predict(data.data), rtol=1e-9)
    assert len(outputs.take(2, 5)) == 3


def test_joblib_file_needs_trust(tmp_path: Path, penguins: pd.DataFrame) -> None:
    model = penguin_pipeline(penguins)
    path = tmp_path / "penguins.joblib"
    joblib.dump(model, path)
    repository = tmp_path / "models"
    with pytest.raises(ModelFileError, match="pickle"):
        add_model("penguins", path, penguins, "species", repository)
    assert not (repository / "penguins" / "1").exists()
    add_model("penguins", path, penguins, "species", repository, trust_pickle=True)
    assert (repository / "penguins" / "1" / "model.skops").is_file()
    rows = penguins[NUMERIC + ["island", "sex"]].iloc[::7]
    served = load(repository, "penguins")
    assert labels_of(served, answer(served, json_rows(rows))) == list(model.predict(rows))


def test_mlflow_directory_with_its_input_example(tmp_path: Path) -> None:
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1_000).fit(data.data, data.target)
    directory = tmp_path / "mlflow-model"
    directory.mkdir()
    joblib.dump(model, directory / "model.pkl")
    example = data.data.iloc[::5]
    (directory / "input_example.json").write_text(json.dumps({"columns": list(example.columns), "data": example.values.tolist()}))
    signature = json.dumps([{"type": "double", "name": c} for c in example.columns])
    (directory / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
        "saved_input_example_info:\n  artifact_path: input_example.json\n  type: dataframe\n"
        f"signature:\n  inputs: '{signature}'\n"
    )
    card = ModelCard.read(add_model("iris-mlflow", directory, None, None, tmp_path / "models", trust_pickle=True))
    assert card.labels == ("0", "1", "2") and len(card.reference_sample["sepal length (cm)"]) == len(example)
    served = load(tmp_path / "models", "iris-mlflow")
    assert labels_of(served, answer(served, json_rows(data.data))) == [str(c) for c in model.predict(data.data)]


def test_model_fitted_on_numpy(tmp_path: Path) -> None:
    data = load_iris(as_frame=True)
    frame = data.frame.assign(target=[str(data.target_names[t]) for t in data.target])
    model = LogisticRegression(max_iter=1_000).fit(data.data.to_numpy(), frame["target"].to_numpy())
    card = ModelCard.read(add_model("iris-numpy", model, frame, "target", tmp_path))
    assert card.input_format == "array" and all(f.dtype == "" for f in card.inputs)
    served = load(tmp_path, "iris-numpy")
    outputs = answer(served, json_rows(data.data))
    assert labels_of(served, outputs) == list(model.predict(data.data.to_numpy()))


def test_versions_are_numbered_in_turn(tmp_path: Path) -> None:
    features = load_iris(as_frame=True).data
    model = KMeans(n_clusters=2, n_init=2, random_state=0).fit(features)
    assert add_model("clusters", model, features, None, tmp_path).name == "1"
    assert add_model("clusters", model, features, None, tmp_path).name == "2"
    assert load(tmp_path, "clusters").version == "2"
