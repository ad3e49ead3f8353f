"""Training users' own models again ("refit"): each shape users bring, added with add_model, then
trained on an uploaded CSV by the training engine. The new version keeps the model's own pipeline
and parameters (save the overrides), learns what the new rows say, and serves through protoserve's
input path exactly what its estimator predicts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from protoserve.monitoring.v1 import labeled_example_pb2, prediction_event_pb2

from protoserve_models.adding import add_model
from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits
from protoserve_models.loading import read_estimator
from protoserve_models.repository import PROJECT_TRUSTED_TYPES
from protoserve_models.training.engine import Engine, TrainingFailed
from protoserve_models.training.record import TrainingSpec
from protoserve_runtime.errors import InvalidArgument
from tests.models.conftest import answer, json_rows, load
from tests.served import shapes
from tests.served.shapes import Shape


class Serving:
    """The serving state's default versions, in memory."""

    def __init__(self) -> None:
        self.defaults: dict[str, str] = {}

    def default_version(self, model: str) -> str:
        return self.defaults.get(model, "")

    def promote(self, model: str, version: str) -> str:
        previous, self.defaults[model] = self.defaults.get(model, ""), version
        return previous


@dataclass
class Bench:
    repository: Path
    shapes: dict[str, Shape]
    csv: dict[str, Path]  # each shape's rows as a CSV upload: features, then the target
    examples: dict[str, list[Any]]

    def engine(self, margin: float = 0.0) -> Engine:
        return Engine(self.repository, PROJECT_TRUSTED_TYPES, Serving(), margin, lambda model: self.examples.get(model, []),
                      InputLimits(max_rows=1000, max_text_length=5000), max_csv_bytes=10_000_000)


CHOSEN = (shapes.penguins_pipeline, shapes.penguins_boosting, shapes.diabetes_forest, shapes.wine_svc,
          shapes.cancer_outliers, shapes.penguin_clusters, shapes.review_text, shapes.penguins_typed,
          shapes.linnerud_ridge, shapes.iris_numpy)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    root = tmp_path_factory.mktemp("refit-shapes")
    repository = tmp_path_factory.mktemp("refit-repository")
    built = {shape.name: shape for shape in (make(root) for make in CHOSEN)}
    uploads = {}
    for shape in built.values():
        add_model(shape.name, shape.model_file, shape.sample_file, shape.target, repository,
                  trust_pickle="--trust-pickle" in shape.flags)
        frame = pd.read_parquet(shape.sample_file) if shape.sample_file.suffix == ".parquet" else pd.read_csv(shape.sample_file)
        targets = shape.target.split(",") if shape.target else []
        upload = root / f"{shape.name}-upload.csv"
        frame[list(shape.features.columns) + targets].to_csv(upload, index=False)
        uploads[shape.name] = upload
    return Bench(repository, built, uploads, {})


def spec(model: str, csv: str = "", params: dict[str, Any] | None = None, label_column: str = "",
         feedback: bool = False, mode: str = "AUTO") -> TrainingSpec:
    return TrainingSpec(run_id=f"run-{time.monotonic_ns()}", model=model, recipe="refit", params=params or {},
                        builtin=False, csv=csv, label_column=label_column, feedback=feedback, mode=mode,  # type: ignore[arg-type]
                        created=time.time())


def newest(bench: Bench, model: str) -> tuple[ModelCard, Any]:
    directory = max((p for p in (bench.repository / model).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return ModelCard.read(directory), read_estimator(directory / "model.skops", PROJECT_TRUSTED_TYPES)


def retrain(bench: Bench, model: str, change: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f,
            **kwargs: Any) -> tuple[dict[str, Any], ModelCard, Any]:
    frame = pd.read_csv(bench.csv[model])
    run = bench.engine().train(spec(model, change(frame).to_csv(index=False), **kwargs), lambda fraction: None)
    card, estimator = newest(bench, model)
    return run, card, estimator


@pytest.mark.parametrize("model", [make.__name__ for make in CHOSEN])
def test_every_shape_is_trained_again_with_its_own_pipeline_and_serves_what_it_predicts(bench: Bench, model: str) -> None:
    name = {make.__name__: shape for make, shape in zip(CHOSEN, bench.shapes.values())}[model].name
    shape = bench.shapes[name]
    before = load(bench.repository, name)
    run, card, estimator = retrain(bench, name)
    assert run["recipe"] == "refit" and run["state"] == "TRAINING_RUN_STATE_SUCCEEDED"
    rows = len(pd.read_csv(bench.csv[name]))
    assert run["data"]["train_rows"] + run["data"]["test_rows"] == rows
    assert run["data"]["rows_by_source"] == {"csv": rows}
    assert card.version == run["version"] and card.training["run"]["run_id"] == run["run_id"]
    assert card.task == before.card.task and card.feature_names == before.card.feature_names
    # The same pipeline and parameters, fitted anew.
    assert type(estimator) is type(before.estimator)
    assert str(estimator.get_params(deep=True)) == str(before.estimator.get_params(deep=True))
    assert estimator is not before.estimator
    if card.task in ("classification", "regression"):
        assert set(card.metrics) >= ({"accuracy", "f1"} if card.task == "classification" else {"r2", "rmse", "mae"})
    # Served through the repository and protoserve's input path, it answers what its estimator predicts.
    served = load(bench.repository, name)
    assert served.card.version == card.version
    requests = shape.requests()
    outputs = answer(served, json_rows(requests))
    local = np.asarray(_local_predict(shape, estimator, requests))
    if card.task == "regression":
        assert outputs.values is not None
        np.testing.assert_allclose(outputs.values.reshape(local.shape), local, rtol=1e-9)
    else:
        assert outputs.label_indices is not None
        labels = [served.card.labels[i] for i in outputs.label_indices]
        expected = (np.where(local == -1, "outlier", "inlier") if card.task == "anomaly_detection"
                    else [str(v) for v in local.tolist()])
        assert labels == list(expected)


def _local_predict(shape: Shape, estimator: Any, frame: pd.DataFrame) -> Any:
    if shape.name == "review-text":
        return estimator.predict(frame["text"])
    if shape.name == "iris-numpy":
        return estimator.predict(frame.to_numpy())
    return estimator.predict(frame)


def test_new_classes_and_new_categories_are_learned(bench: Bench) -> None:
    """Rows naming a species anew and an island never seen: the new version knows both."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame["species"] = frame["species"].replace({"Gentoo": "Gentoo-penguin"})
        frame.loc[frame.index[::7], "island"] = "Anvers"
        return frame

    run, card, _ = retrain(bench, "penguins", change, mode="MANUAL")
    assert "Gentoo-penguin" in card.labels and "Gentoo" not in card.labels
    assert "Anvers" in {c for f in card.inputs if f.name == "island" for c in f.categories}
    assert not run["promotion"]["promoted"] and run["promotion"]["reason"].startswith("MANUAL")
    served = load(bench.repository, "penguins")
    gentoo = {"bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217.0, "body_mass_g": 5200.0,
              "island": "Anvers", "sex": None}
    outputs = answer(served, [gentoo])
    assert outputs.label_indices is not None
    assert served.card.labels[outputs.label_indices[0]] == "Gentoo-penguin"


def test_parameters_override_the_pipelines_own(bench: Bench) -> None:
    run, _, estimator = retrain(bench, "penguin-clusters", params={"kmeans__n_clusters": 4})
    assert estimator.get_params()["kmeans__n_clusters"] == 4
    card, _ = newest(bench, "penguin-clusters")
    assert card.labels == ("0", "1", "2", "3")
    assert run["parameters"] == {"kmeans__n_clusters": 4}
    assert not run["promotion"]["promoted"] and "no held-out score" in run["promotion"]["reason"]


def test_bad_parameters_are_refused_naming_them(bench: Bench) -> None:
    engine = bench.engine()
    card, version = engine.model_card("penguins")
    with pytest.raises(InvalidArgument) as unknown:
        engine.refit_parameters("penguins", version, {"logisticregression__nope": 1})
    assert unknown.value.message.startswith("parameters.logisticregression__nope: is not a parameter")
    with pytest.raises(InvalidArgument) as refused:
        engine.refit_parameters("penguins", version, {"logisticregression__C": -1.0})
    assert refused.value.message.startswith("parameters.logisticregression__C:")
    with pytest.raises(InvalidArgument) as step:
        engine.refit_parameters("penguins", version, {"columntransformer": 1})
    assert "is a step of the model" in step.value.message
    assert engine.refit_parameters("penguins", version, {"logisticregression__C": 2}) == {"logisticregression__C": 2.0}


def test_a_regressor_learns_what_the_new_rows_say_and_the_better_version_wins(bench: Bench) -> None:
    """Targets shifted by 1,000: the new version predicts about 1,000 more, and being scored on rows
    of the new kind, it beats the default version and is promoted."""
    before = load(bench.repository, "diabetes-forest")
    rows = json_rows(bench.shapes["diabetes-forest"].requests())
    engine = bench.engine()
    frame = pd.read_csv(bench.csv["diabetes-forest"]).assign(target=lambda f: f["target"] + 1000)
    run = engine.train(spec("diabetes-forest", frame.to_csv(index=False)), lambda fraction: None)
    after = load(bench.repository, "diabetes-forest")
    old, new = answer(before, rows).values, answer(after, rows).values
    assert old is not None and new is not None
    assert 900 < float(np.mean(new - old)) < 1100
    assert run["promotion"]["promoted"] and run["promotion"]["metric"] == "r2"
    assert engine.serving.default_version("diabetes-forest") == run["version"]  # type: ignore[attr-defined]


def test_several_outputs_take_their_target_columns(bench: Bench) -> None:
    run, card, estimator = retrain(bench, "linnerud")
    assert card.outputs == ("Weight", "Waist", "Pulse") and card.training["target"] == ["Weight", "Waist", "Pulse"]
    assert np.shape(estimator.coef_) == (3, 3)


def test_feedback_with_mixed_inputs_is_training_data(bench: Bench) -> None:
    """Labeled examples carrying one FeatureValue per column (as monitoring writes them for a
    DataFrame model), missing values among them."""
    penguins = pd.read_csv(bench.csv["penguins-typed"])
    examples = []
    for i, row in enumerate(json_rows(penguins)):
        inputs = [_feature_value(row[name]) for name in ("bill_length_mm", "flipper_length_mm", "year", "male")]
        examples.append(labeled_example_pb2.LabeledExample(prediction_id=str(i), model="penguins-typed",
                                                           inputs=inputs, label=row["species"]))
    examples.append(labeled_example_pb2.LabeledExample(prediction_id="short", inputs=examples[0].inputs[:2], label="Adelie"))
    bench.examples["penguins-typed"] = examples
    run = bench.engine().train(spec("penguins-typed", feedback=True), lambda fraction: None)
    assert run["data"]["rows_by_source"] == {"feedback": len(penguins)}
    card, _ = newest(bench, "penguins-typed")
    assert "1 examples that did not fit the model left out" in card.training_data


def _feature_value(value: Any) -> prediction_event_pb2.FeatureValue:
    if value is None:
        return prediction_event_pb2.FeatureValue()
    if isinstance(value, bool):
        return prediction_event_pb2.FeatureValue(bool_value=value)
    if isinstance(value, str):
        return prediction_event_pb2.FeatureValue(string_value=value)
    return prediction_event_pb2.FeatureValue(number_value=float(value))


@pytest.mark.parametrize(("model", "change", "words"), [
    ("iris-numpy", lambda f: f.assign(**{f.columns[0]: f[f.columns[0]].where(f.index % 9 != 0)}), "contains NaN"),
    ("penguins-typed", lambda f: f.assign(species="Adelie"), "single class"),
])
def test_rows_the_model_cannot_learn_from_fail_the_run_and_write_nothing(
    bench: Bench, model: str, change: Callable[[pd.DataFrame], pd.DataFrame], words: str
) -> None:
    """Missing values for a model with no imputer (scikit-learn's own words), or one class."""
    directory = bench.repository / model
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(TrainingFailed, match=words):
        retrain(bench, model, change)
    assert sorted(p.name for p in directory.iterdir()) == before


@pytest.mark.parametrize(("csv", "field", "words"), [
    ("bill_length_mm,flipper_length_mm,year,male\n1,2,2007,true\n", "data.csv", "no label column species"),
    ("bill_length_mm,flipper_length_mm,year,male,species,extra\n", "data.csv", "unknown column(s) extra"),
    ("bill_length_mm,flipper_length_mm,year,male,species\n40,190,2007,maybe,Adelie\n", "data.csv", "line 2: male"),
    ("bill_length_mm,flipper_length_mm,year,male,species\n40,190,2007,true,\n", "data.csv", "line 2: the label is empty"),
])
def test_bad_uploads_are_refused_naming_the_line(bench: Bench, csv: str, field: str, words: str) -> None:
    from protoserve_models.training import refit

    card, _ = bench.engine().model_card("penguins-typed")
    with pytest.raises(InvalidArgument) as refused:
        refit.csv_rows(card, csv.encode(), refit.label_columns(card, ""), 10_000)
    assert refused.value.message.startswith(field) and words in refused.value.message


def test_the_add_target_is_the_default_label_column(bench: Bench) -> None:
    from protoserve_models.training import refit

    card, _ = bench.engine().model_card("wine-svc")
    assert refit.label_columns(card, "") == ["target"]
    outliers, _ = bench.engine().model_card("cancer-outliers")
    assert refit.label_columns(outliers, "") == []
    with pytest.raises(InvalidArgument, match="learns without labels"):
        refit.label_columns(outliers, "label")


def test_recipes_of_other_inputs_are_refused_for_a_dataframe_model(bench: Bench) -> None:
    engine = bench.engine()
    card, _ = engine.model_card("penguins")
    assert engine.recipe_name(card, "") == "refit"
    with pytest.raises(InvalidArgument, match="train it again with recipe 'refit'"):
        engine.recipe_for(card, "sklearn.linear_model.LogisticRegression", {})


def test_a_classifier_without_probabilities_keeps_its_decision_scores(bench: Bench) -> None:
    _, card, estimator = retrain(bench, "wine-svc")
    assert card.decision_scores and not card.probabilities
    assert estimator.classes_.tolist() == sorted(pd.read_csv(bench.csv["wine-svc"])["target"].unique().tolist())
    served = load(bench.repository, "wine-svc")
    requests = bench.shapes["wine-svc"].requests()
    outputs = answer(served, json_rows(requests))
    assert outputs.scores is not None
    np.testing.assert_allclose(outputs.scores, estimator.decision_function(requests), rtol=1e-9)
