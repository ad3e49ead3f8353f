"""The linear pipeline kernel against scikit-learn: the same labels, probabilities within 1e-12
(relative), on real data with missing values, unseen categories and every option it compiles;
and not compiled where it would not be exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from protoserve_models.kernels import KERNEL_ATOL, KERNEL_RTOL, proba_kernel
from protoserve_models.linear_kernel import LinearPipelineKernel
from tests.models.conftest import NUMERIC, checked_columns

CATEGORIES = ["island", "sex"]


def assert_same(kernel: LinearPipelineKernel, estimator: object, inputs: object) -> None:
    reference = estimator.predict_proba(inputs)  # type: ignore[attr-defined]
    # A DataFrame model is also fed the checked columns the serving path holds instead of a DataFrame.
    for given in (inputs, checked_columns(inputs)) if isinstance(inputs, pd.DataFrame) else (inputs,):
        fast = kernel(given)
        np.testing.assert_allclose(fast, reference, rtol=KERNEL_RTOL, atol=KERNEL_ATOL)
        assert np.array_equal(fast.argmax(axis=1), reference.argmax(axis=1))


def penguins_pipeline(handle_unknown: str = "ignore", categorical_imputer: bool = False) -> object:
    categorical = OneHotEncoder(handle_unknown=handle_unknown)
    if categorical_imputer:
        categorical = make_pipeline(SimpleImputer(strategy="most_frequent"), categorical)
    return make_pipeline(
        ColumnTransformer([("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
                           ("categories", categorical, CATEGORIES)]),
        LogisticRegression(max_iter=1_000),
    )


def unseen(penguins: pd.DataFrame) -> pd.DataFrame:
    """Rows as requests bring them: gaps, an island and a sex the training rows never held."""
    rows = penguins[NUMERIC + CATEGORIES].copy()
    rows.loc[rows.index[::5], "island"] = "Anvers"
    rows.loc[rows.index[::7], "sex"] = None
    rows.loc[rows.index[::11], "bill_depth_mm"] = np.nan
    return rows


@pytest.mark.parametrize("categorical_imputer", [False, True])
def test_a_dataframe_pipeline_of_numbers_and_categories(penguins: pd.DataFrame, categorical_imputer: bool) -> None:
    model = penguins_pipeline(categorical_imputer=categorical_imputer).fit(penguins[NUMERIC + CATEGORIES],
                                                                           penguins["species"])
    kernel = LinearPipelineKernel.compile(model)
    assert kernel is not None and proba_kernel(model) is not None
    assert_same(kernel, model, penguins[NUMERIC + CATEGORIES])
    assert_same(kernel, model, unseen(penguins))
    assert_same(kernel, model, penguins[NUMERIC + CATEGORIES].iloc[:1])


def test_pandas_category_and_nullable_dtypes(penguins: pd.DataFrame) -> None:
    frame = penguins[NUMERIC + CATEGORIES].astype({"island": "category", "body_mass_g": "Float64"})
    model = penguins_pipeline().fit(frame, penguins["species"])
    kernel = LinearPipelineKernel.compile(model)
    assert kernel is not None
    assert_same(kernel, model, frame)


def test_a_binary_model_on_numpy_with_scaler_options() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    for scaler in (StandardScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False)):
        model = make_pipeline(scaler, LogisticRegression(max_iter=5_000)).fit(x, y)
        kernel = LinearPipelineKernel.compile(model)
        assert kernel is not None
        assert_same(kernel, model, x)


def test_a_median_imputer_in_front_of_a_multiclass_model() -> None:
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame.iloc[::4, 2] = np.nan
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=5_000))
    model.fit(frame, wine.target)
    kernel = LinearPipelineKernel.compile(model)
    assert kernel is not None
    assert_same(kernel, model, frame)


def test_a_category_the_encoder_refuses_gets_scikit_learns_own_error(penguins: pd.DataFrame) -> None:
    model = penguins_pipeline(handle_unknown="error").fit(penguins[NUMERIC + CATEGORIES].dropna(),
                                                          penguins.dropna()["species"])
    kernel = LinearPipelineKernel.compile(model)
    assert kernel is not None
    with pytest.raises(ValueError, match="unknown categor"):
        kernel(unseen(penguins.dropna()))


def test_what_it_would_not_compute_exactly_is_not_compiled(penguins: pd.DataFrame) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    texts = pd.Series(["good", "bad", "fine", "awful"] * 5)
    not_compiled = [
        make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 0, 1, 0] * 5),
        make_pipeline(StandardScaler(), SVC()).fit(x, y),
        make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=5_000)).fit(x, y),
        make_pipeline(
            ColumnTransformer([("c", OneHotEncoder(drop="first"), CATEGORIES)]), LogisticRegression()
        ).fit(penguins[CATEGORIES].dropna(), penguins.dropna()["species"]),
        LogisticRegression(max_iter=5_000).fit(x, y),  # no pipeline: scikit-learn alone is already one product
    ]
    for model in not_compiled:
        assert LinearPipelineKernel.compile(model) is None, model
