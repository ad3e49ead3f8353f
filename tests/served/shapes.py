"""The shapes of model users bring, built as they build them from real data that packages ship, and
saved as they save them (joblib, skops, an MLflow model directory, a Parquet or CSV sample)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import skops.io as sio
from palmerpenguins import load_penguins
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

from protoserve_models.builtin.sentiment_data import load_sentiment_corpus
from tests.harness import REPO_ROOT
from tests.models.conftest import NUMERIC, json_rows, json_value  # noqa: F401  (shared with the served tests)


@dataclass
class Shape:
    """One model as a user has it: the file, the sample to add it with, and its local answers."""

    name: str
    task: str
    model_file: Path
    sample_file: Path
    features: pd.DataFrame  # rows as the model takes them (the requests send these)
    predict: Callable[[pd.DataFrame], np.ndarray]  # the estimator's own answer, locally
    target: str | None = None
    flags: list[str] = field(default_factory=list)  # more `protoserve models add` options

    def requests(self, count: int = 24) -> pd.DataFrame:
        """Rows spread over the data, missing values among them where the data has some."""
        step = max(1, len(self.features) // count)
        return self.features.iloc[::step].iloc[:count]


def _penguins() -> pd.DataFrame:
    return load_penguins()


def penguins_pipeline(root: Path) -> Shape:
    """Numbers with gaps and categorical strings through a ColumnTransformer, saved with joblib."""
    data = _penguins()
    features = data[NUMERIC + ["island", "sex"]]
    columns = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ("categories", OneHotEncoder(handle_unknown="ignore"), ["island", "sex"]),
    ])
    model = make_pipeline(columns, LogisticRegression(max_iter=1_000)).fit(features, data["species"])
    joblib.dump(model, root / "penguins.joblib")
    data.drop(columns="year").to_csv(root / "penguins.csv", index=False)
    return Shape("penguins", "classification", root / "penguins.joblib", root / "penguins.csv", features,
                 model.predict, "species", ["--trust-pickle"])


def penguins_boosting(root: Path) -> Shape:
    """Native categorical support: pandas category columns, so the sample is Parquet (it keeps them)."""
    data = _penguins().astype({"island": "category", "sex": "category"})
    features = data[NUMERIC + ["island", "sex"]]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=30, random_state=0)
    model.fit(features, data["species"])
    sio.dump(model, root / "penguins-hgb.skops")
    data.to_parquet(root / "penguins.parquet")
    return Shape("penguins-hgb", "classification", root / "penguins-hgb.skops", root / "penguins.parquet", features,
                 model.predict, "species")


def diabetes_forest(root: Path) -> Shape:
    data = load_diabetes(as_frame=True).frame
    features = data.drop(columns="target")
    model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(features, data["target"])
    sio.dump(model, root / "diabetes-forest.skops")
    data.to_csv(root / "diabetes.csv", index=False)
    return Shape("diabetes-forest", "regression", root / "diabetes-forest.skops", root / "diabetes.csv", features,
                 model.predict, "target")


def wine_svc(root: Path) -> Shape:
    """A classifier without probabilities: labels and decision scores."""
    wine = load_wine(as_frame=True)
    data = wine.frame.assign(target=[str(wine.target_names[t]) for t in wine.target])
    features = data.drop(columns="target")
    model = make_pipeline(StandardScaler(), SVC()).fit(features, data["target"])
    joblib.dump(model, root / "wine-svc.joblib")
    data.to_csv(root / "wine.csv", index=False)
    return Shape("wine-svc", "classification", root / "wine-svc.joblib", root / "wine.csv", features, model.predict,
                 "target", ["--trust-pickle"])


def cancer_outliers(root: Path) -> Shape:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, :6]
    model = IsolationForest(n_estimators=50, random_state=0).fit(data)
    sio.dump(model, root / "cancer-outliers.skops")
    data.to_csv(root / "cancer.csv", index=False)
    return Shape("cancer-outliers", "anomaly_detection", root / "cancer-outliers.skops", root / "cancer.csv", data,
                 model.predict)


def penguin_clusters(root: Path) -> Shape:
    data = _penguins()[NUMERIC].dropna().reset_index(drop=True)
    model = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=3, random_state=0)).fit(data)
    sio.dump(model, root / "penguin-clusters.skops")
    data.to_csv(root / "penguin-numbers.csv", index=False)
    return Shape("penguin-clusters", "clustering", root / "penguin-clusters.skops", root / "penguin-numbers.csv", data,
                 model.predict)


def review_text(root: Path) -> Shape:
    """A text pipeline without probabilities, fitted on a column of strings."""
    corpus = load_sentiment_corpus(threshold=0.5)
    texts = pd.Series(corpus.texts[::6], name="text")
    labels = corpus.labels[::6]
    model = make_pipeline(TfidfVectorizer(min_df=2), LinearSVC()).fit(texts, labels)
    joblib.dump(model, root / "review-text.joblib")
    sample = pd.DataFrame({"text": texts, "label": labels}).iloc[::10]
    sample.to_csv(root / "reviews.csv", index=False)
    return Shape("review-text", "classification", root / "review-text.joblib", root / "reviews.csv",
                 sample[["text"]], lambda frame: model.predict(frame["text"]), "label", ["--trust-pickle"])


def penguins_typed(root: Path) -> Shape:
    """Integer and boolean columns beside numbers."""
    data = _penguins().dropna().reset_index(drop=True)
    data = data.assign(male=data["sex"] == "male", year=data["year"].astype("int64"))
    features = data[["bill_length_mm", "flipper_length_mm", "year", "male"]]
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(features, data["species"])
    sio.dump(model, root / "penguins-typed.skops")
    data[["bill_length_mm", "flipper_length_mm", "year", "male", "species"]].to_csv(root / "penguins-typed.csv", index=False)
    return Shape("penguins-typed", "classification", root / "penguins-typed.skops", root / "penguins-typed.csv",
                 features, model.predict, "species")


def linnerud_ridge(root: Path) -> Shape:
    """Several named outputs."""
    data = load_linnerud(as_frame=True)
    frame = pd.concat([data.data, data.target], axis=1).astype("float64")
    model = Ridge().fit(data.data.astype("float64"), data.target.astype("float64"))
    sio.dump(model, root / "linnerud.skops")
    frame.to_csv(root / "linnerud.csv", index=False)
    return Shape("linnerud", "regression", root / "linnerud.skops", root / "linnerud.csv", data.data.astype("float64"),
                 model.predict, "Weight,Waist,Pulse")


def iris_mlflow(root: Path, serialization: str) -> Shape:
    """An MLflow model directory written by mlflow itself (its signature and input example inside),
    by a training script of its own."""
    directory = root / f"iris-mlflow-{serialization}"
    subprocess.run([sys.executable, "-m", "tests.served.save_mlflow", str(directory), serialization],
                   check=True, capture_output=True, cwd=REPO_ROOT, timeout=300)
    model = joblib.load(directory.with_suffix(".joblib"))
    iris = load_iris(as_frame=True)
    sample = root / f"iris-{serialization}.csv"  # a file of its own: the two builders may run side by side
    iris.data.to_csv(sample, index=False)
    flags = ["--trust-pickle"] if serialization == "cloudpickle" else []
    return Shape(f"iris-mlflow-{serialization}", "classification", directory, sample, iris.data,
                 model.predict, None, flags)


def iris_numpy(root: Path) -> Shape:
    """Fitted on a numpy array: the names come from the sample's header."""
    iris = load_iris(as_frame=True)
    labels = np.array([str(iris.target_names[t]) for t in iris.target])
    model = LogisticRegression(max_iter=1_000).fit(iris.data.to_numpy(), labels)
    sio.dump(model, root / "iris-numpy.skops")
    iris.data.assign(species=labels).to_csv(root / "iris-labeled.csv", index=False)
    return Shape("iris-numpy", "classification", root / "iris-numpy.skops", root / "iris-labeled.csv", iris.data,
                 lambda frame: model.predict(frame.to_numpy()), "species")


BUILDERS: tuple[Callable[[Path], Shape], ...] = (
    penguins_pipeline, penguins_boosting, diabetes_forest, wine_svc, cancer_outliers, penguin_clusters, review_text,
    penguins_typed, linnerud_ridge, lambda root: iris_mlflow(root, "skops"),
    lambda root: iris_mlflow(root, "cloudpickle"), iris_numpy,
)
