"""What is refused, and how: untrusted code at add and at load, a version that cannot answer its
reference sample, bad rows (each problem naming rows[i].column), a model that fails at predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, normalize

from protoserve_models.adding import AddModelError, add_model
from protoserve_models.card import CARD_FILE, MODEL_FILE, Feature, ModelCard
from protoserve_models.inputs import rows_to_inputs
from protoserve_models.loading import UntrustedModelError, read_estimator
from protoserve_models.model import LoadedModel, ModelError
from protoserve_models.repository import ModelRepository, VersionState
from protoserve_runtime.errors import InvalidArgument
from tests.models.conftest import LIMITS, NUMERIC, answer, json_rows
from tests.models.test_add_model import penguin_pipeline


def doubled(x: np.ndarray) -> np.ndarray:
    """A user's own function: code the repository has no reason to trust."""
    return x * 2.0


USER_FUNCTION = f"{__name__}.doubled"


@pytest.fixture(scope="module")
def iris_frame() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    return data.frame.assign(target=[str(data.target_names[t]) for t in data.target])


@pytest.fixture(scope="module")
def user_function_model(iris_frame: pd.DataFrame):
    features = iris_frame.drop(columns="target")
    return make_pipeline(FunctionTransformer(doubled), LogisticRegression(max_iter=1_000)).fit(features, iris_frame["target"])


@pytest.fixture(scope="module")
def strict_penguins(tmp_path_factory: pytest.TempPathFactory, penguins: pd.DataFrame) -> LoadedModel:
    root = tmp_path_factory.mktemp("strict")
    add_model("penguins", penguin_pipeline(penguins), penguins, "species", root, strict_categories=True)
    repository = ModelRepository(root)
    repository.load_all()
    return repository.get("penguins")


def test_user_function_is_refused_at_add(tmp_path: Path, iris_frame: pd.DataFrame, user_function_model) -> None:
    with pytest.raises(UntrustedModelError, match=USER_FUNCTION.replace(".", r"\.")):
        add_model("iris-doubled", user_function_model, iris_frame, "target", tmp_path)
    assert [p.name for p in (tmp_path / "iris-doubled").iterdir()] == []  # nothing half-written is left
    # Trusted by name, it is added.
    add_model("iris-doubled", user_function_model, iris_frame, "target", tmp_path, trusted_types=[USER_FUNCTION])


def test_user_function_is_refused_at_load(tmp_path: Path, iris_frame: pd.DataFrame, user_function_model) -> None:
    directory = add_model("iris-doubled", user_function_model, iris_frame, "target", tmp_path, trusted_types=[USER_FUNCTION])
    entry = ModelRepository(tmp_path).load("iris-doubled", "1")
    assert entry.state is VersionState.FAILED and USER_FUNCTION in entry.reason and "not trusted" in entry.reason
    trusting = ModelRepository(tmp_path, trusted_types=[USER_FUNCTION])
    assert trusting.load("iris-doubled", "1").state is VersionState.READY
    assert sio.get_untrusted_types(file=directory / MODEL_FILE) == [USER_FUNCTION]


def test_a_scikit_learn_function_is_trusted_by_its_module(tmp_path: Path, iris_frame: pd.DataFrame) -> None:
    """skops trusts no plain function by default; one of scikit-learn's own is let in by its module prefix."""
    features = iris_frame.drop(columns="target")
    model = make_pipeline(FunctionTransformer(normalize), LogisticRegression(max_iter=1_000)).fit(features, iris_frame["target"])
    directory = add_model("iris-normalized", model, iris_frame, "target", tmp_path)
    assert sio.get_untrusted_types(file=directory / MODEL_FILE) == ["sklearn.preprocessing._data.normalize"]
    loaded = read_estimator(directory / MODEL_FILE, trusted=[])
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_a_version_failing_its_reference_sample_fails_alone(tmp_path: Path, penguins: pd.DataFrame) -> None:
    add_model("penguins", penguin_pipeline(penguins), penguins, "species", tmp_path)
    broken = tmp_path / "penguins" / "2"
    shutil.copytree(tmp_path / "penguins" / "1", broken)
    card = json.loads((broken / CARD_FILE).read_text())
    card["version"] = "2"
    card["reference_sample"]["body_mass_g"][0] = "heavy"  # a string where the model takes a number
    (broken / CARD_FILE).write_text(json.dumps(card))
    repository = ModelRepository(tmp_path)
    repository.load_all()
    states = {e.version: (e.state, e.reason) for e in repository.versions("penguins")}
    assert states["1"][0] is VersionState.READY
    assert states["2"][0] is VersionState.FAILED
    assert "reference sample" in states["2"][1] and "rows[0].body_mass_g" in states["2"][1]
    assert repository.get("penguins").version == "1"


def test_bad_rows_are_named(strict_penguins: LoadedModel, penguins: pd.DataFrame) -> None:
    rows = json_rows(penguins[NUMERIC + ["island", "sex"]].dropna().iloc[:4])
    rows[0]["bill_length_mm"] = "long"
    del rows[1]["sex"]
    rows[2]["island"] = None
    rows[3]["island"] = "Atlantis"
    rows[3]["beak_colour"] = "orange"
    with pytest.raises(InvalidArgument) as caught:
        answer(strict_penguins, rows)
    violations = {v.field: v.description for v in caught.value.violations}
    assert violations == {
        "rows[0].bill_length_mm": "expected a number, got a string",
        "rows[1].sex": "missing; every row needs every input feature",
        "rows[2].island": "must not be null; this feature takes no missing values",
        "rows[3].island": "unknown category 'Atlantis'; the model knows Biscoe, Dream, Torgersen",
        "rows[3].beak_colour": f"unknown feature; the model takes {', '.join(strict_penguins.card.feature_names)}",
    }
    assert str(caught.value).startswith("rows[0].bill_length_mm: expected a number, got a string (and 4 more)")


def test_integer_and_boolean_values_are_checked() -> None:
    card = ModelCard(
        name="m", version="1", task="clustering", description="", labels=("0", "1"), input_format="dataframe",
        inputs=(Feature("n", "integer", dtype="int64"), Feature("flag", "boolean", nullable=True, dtype="boolean")),
    )
    with pytest.raises(InvalidArgument) as caught:
        rows_to_inputs(card, [{"n": 2.5, "flag": 1}, {"n": True, "flag": None}], LIMITS)
    assert {v.field: v.description for v in caught.value.violations} == {
        "rows[0].n": "expected a whole number, got 2.5",
        "rows[0].flag": "expected true or false, got a number",
        "rows[1].n": "expected a whole number, got a boolean",
    }
    frame = rows_to_inputs(card, [{"n": 3.0, "flag": None}, {"n": -1, "flag": True}], LIMITS)
    assert list(frame.dtypes.astype(str)) == ["int64", "boolean"]
    text = ModelCard(name="m", version="1", task="clustering", description="", labels=("0",), input_format="dataframe",
                     inputs=(Feature("note", "string", nullable=True, dtype="object"),))
    notes = rows_to_inputs(text, [{"note": "a"}, {"note": None}], LIMITS)["note"]
    assert notes.dtype == object and notes.iloc[0] == "a" and notes.isna().iloc[1]  # object as fitted, not pandas' str
    assert frame["n"].tolist() == [3, -1] and frame["flag"].isna().tolist() == [True, False]


def test_a_model_failing_at_predict_is_a_model_error(iris_frame: pd.DataFrame) -> None:
    estimator = KMeans(n_clusters=2, n_init=2, random_state=0).fit(iris_frame.drop(columns="target").to_numpy())
    card = ModelCard(name="clusters", version="7", task="clustering", description="", labels=("0", "1"),
                     inputs=(Feature("a", "double"), Feature("b", "double")))  # a card that does not fit the model
    with pytest.raises(ModelError, match=r"model 'clusters' version 7 failed to predict: ValueError"):
        LoadedModel(card, estimator).predict(np.zeros((1, 2)))


def test_untrusted_estimator_file_is_refused_by_name(tmp_path: Path, iris_frame: pd.DataFrame, user_function_model) -> None:
    path = tmp_path / "doubled.skops"
    sio.dump(user_function_model, path)
    with pytest.raises(UntrustedModelError, match=USER_FUNCTION.replace(".", r"\.")):
        add_model("iris-doubled", path, iris_frame, "target", tmp_path / "models")


def test_a_sample_must_fit_the_model(tmp_path: Path, iris_frame: pd.DataFrame) -> None:
    features = iris_frame.drop(columns="target")
    model = LogisticRegression(max_iter=1_000).fit(features, iris_frame["target"])
    shuffled = iris_frame[["sepal width (cm)", "sepal length (cm)", "petal length (cm)", "petal width (cm)", "target"]]
    card = ModelCard.read(add_model("iris", model, shuffled, "target", tmp_path))  # a DataFrame model takes columns by name
    assert card.feature_names == tuple(features.columns)
    numpy_model = LogisticRegression(max_iter=1_000).fit(features.to_numpy(), iris_frame["target"].to_numpy())
    with pytest.raises(AddModelError, match="the model takes 4 features but the sample has 5 columns"):
        add_model("iris-wide", numpy_model, iris_frame.assign(extra=1.0), "target", tmp_path)
    with pytest.raises(AddModelError, match="lacks the column"):
        add_model("iris-narrow", model, iris_frame.drop(columns="petal width (cm)"), "target", tmp_path)
