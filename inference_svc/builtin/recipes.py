"""The built-in models: how each is trained, from data the project has, deterministically.

Each recipe returns the fitted estimator and its card; held-out metrics are measured on a split
that the estimator never saw.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from inference_svc.builtin.sentiment_data import SENTIMENT_SOURCE, load_sentiment_corpus
from inference_svc.builtin.text_features import VaderLexiconFeatures
from inference_svc.card import Feature, ModelCard

CONFIG_PATH = Path(__file__).with_name("recipes.toml")


@dataclass(frozen=True)
class BuiltModel:
    estimator: Any
    card: ModelCard


def load_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def fingerprint(*arrays: Any) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.asarray(array).astype(str).tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def _classification_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "f1_macro": round(float(f1_score(y_true, y_pred, average="macro")), 4),
    }


def _reference(x: Any, names: Sequence[str], rows: int, seed: int) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), size=min(rows, len(x)), replace=False)
    if np.asarray(x).ndim == 1:
        return {names[0]: [str(x[i]) for i in picked]}
    return {name: [round(float(x[i, j]), 6) for i in picked] for j, name in enumerate(names)}


def build_iris_knn(config: dict[str, Any]) -> BuiltModel:
    own, split = config["iris-knn"], config["split"]
    data = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = [str(n) for n in data.target_names]
    y = np.array(labels)[data.target]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, y, test_size=split["test_size"], random_state=split["random_state"], stratify=y
    )
    params = {"n_neighbors": int(own["n_neighbors"]), "metric": str(own["metric"])}
    if params["metric"] not in ("euclidean", "manhattan"):
        raise ValueError("iris-knn: metric must be euclidean or manhattan")
    model = KNeighborsClassifier(**params).fit(x_train, y_train)
    card = ModelCard(
        name="iris-knn",
        version="1",
        task="classification",
        description="Iris species from flower measurements, by k-nearest neighbours.",
        inputs=tuple(Feature(n, "double", f"{n.replace('_', ' ')} in centimetres") for n in names),
        labels=tuple(str(c) for c in model.classes_),
        metrics=_classification_metrics(y_test, model.predict(x_test)),
        training_data="Iris data set (Fisher, 1936), as bundled with scikit-learn (BSD-3-Clause).",
        algorithm=f"KNeighborsClassifier(n_neighbors={params['n_neighbors']}, metric={params['metric']})",
        reference_sample=_reference(x_train, names, split["reference_rows"], split["random_state"]),
        training={"recipe": "iris-knn", "params": params, "data": fingerprint(data.data, y),
                  "train_rows": len(x_train), "test_rows": len(x_test)},
    )
    return BuiltModel(model, card)


def build_sentiment(config: dict[str, Any]) -> BuiltModel:
    own, split = config["sentiment"], config["split"]
    corpus = load_sentiment_corpus(float(own["neutral_threshold"]))
    texts, y = np.array(corpus.texts, dtype=object), np.array(corpus.labels)
    strata = [f"{d}:{label}" for d, label in zip(corpus.domains, corpus.labels)]
    indices = np.arange(len(texts))
    train, test = train_test_split(indices, test_size=split["test_size"], random_state=split["random_state"], stratify=strata)
    model = Pipeline([
        ("features", FeatureUnion(
            [("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
             ("lexicon", VaderLexiconFeatures())],
            transformer_weights={"lexicon": float(own["lexicon_weight"])},
        )),
        ("classifier", LogisticRegression(C=float(own["regularization_c"]), max_iter=3000)),
    ]).fit(texts[train], y[train])
    predicted = model.predict(texts[test])
    metrics = _classification_metrics(y[test], predicted)
    domains = np.array(corpus.domains)[test]
    for domain in sorted(set(domains)):
        mask = domains == domain
        metrics[f"accuracy_{domain}"] = round(float(accuracy_score(y[test][mask], predicted[mask])), 4)
    card = ModelCard(
        name="sentiment",
        version="1",
        task="classification",
        description="Sentiment of English text: negative, neutral or positive, with a score.",
        inputs=(Feature("text", "string", "The text to classify: a post, a review, a sentence of news opinion.", 5000),),
        labels=tuple(str(c) for c in model.classes_),
        metrics=metrics,
        training_data=SENTIMENT_SOURCE,
        algorithm="TF-IDF word 1-2 grams + VADER lexicon scores -> multinomial LogisticRegression",
        reference_sample=_reference(texts[train], ["text"], split["reference_rows"], split["random_state"]),
        training={"recipe": "sentiment", "params": own, "data": fingerprint(texts, y),
                  "train_rows": len(train), "test_rows": len(test)},
    )
    return BuiltModel(model, card)


def build_regression_gp(config: dict[str, Any]) -> BuiltModel:
    own, split = config["regression-gp"], config["split"]
    data = load_diabetes(scaled=False)
    names = [str(n) for n in own["features"]]
    columns = [list(data.feature_names).index(n) for n in names]
    x, y = data.data[:, columns], data.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=split["test_size"], random_state=split["random_state"])
    kernel = ConstantKernel(1.0) * RBF(length_scale=np.ones(len(names))) + WhiteKernel(1.0)
    model = Pipeline([
        ("scale", StandardScaler()),
        ("gp", GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=split["random_state"])),
    ]).fit(x_train, y_train)
    mean, std = model.predict(x_test, return_std=True)
    within = np.abs(y_test - mean) <= 1.96 * std
    descriptions = {"age": "age in years", "bmi": "body mass index", "bp": "average blood pressure (mm Hg)",
                    "s5": "log of serum triglycerides level", "s1": "total serum cholesterol",
                    "s2": "low-density lipoproteins", "s3": "high-density lipoproteins",
                    "s4": "total cholesterol / HDL", "s6": "blood sugar level", "sex": "sex"}
    card = ModelCard(
        name="regression-gp",
        version="1",
        task="regression",
        description="Disease progression one year after baseline (diabetes), with predictive variance.",
        inputs=tuple(Feature(n, "double", descriptions.get(n, n)) for n in names),
        metrics={
            "rmse": round(float(np.sqrt(mean_squared_error(y_test, mean))), 4),
            "mae": round(float(mean_absolute_error(y_test, mean)), 4),
            "r2": round(float(r2_score(y_test, mean)), 4),
            "coverage_95": round(float(within.mean()), 4),
        },
        training_data="Diabetes data set (Efron et al., 2004), as bundled with scikit-learn (BSD-3-Clause).",
        algorithm=f"StandardScaler -> GaussianProcessRegressor({model.named_steps['gp'].kernel_})",
        reference_sample=_reference(x_train, names, split["reference_rows"], split["random_state"]),
        training={"recipe": "regression-gp", "params": {"features": names}, "data": fingerprint(x, y),
                  "train_rows": len(x_train), "test_rows": len(x_test)},
    )
    return BuiltModel(model, card)


def build_risk(config: dict[str, Any]) -> BuiltModel:
    own, split = config["risk"], config["split"]
    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    y = np.array([str(n) for n in data.target_names])[data.target]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, y, test_size=split["test_size"], random_state=split["random_state"], stratify=y
    )
    params = {k: own[k] for k in ("n_estimators", "max_depth", "learning_rate")}
    model = GradientBoostingClassifier(**params, random_state=split["random_state"]).fit(x_train, y_train)
    card = ModelCard(
        name="risk",
        version="1",
        task="classification",
        description="Risk that a breast mass is malignant, from 30 measurements of cell nuclei.",
        inputs=tuple(Feature(n, "double", n.replace("_", " ")) for n in names),
        labels=tuple(str(c) for c in model.classes_),
        metrics=_classification_metrics(y_test, model.predict(x_test)),
        training_data="Breast Cancer Wisconsin (Diagnostic) data set, as bundled with scikit-learn (BSD-3-Clause).",
        algorithm="GradientBoostingClassifier(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")",
        reference_sample=_reference(x_train, names, split["reference_rows"], split["random_state"]),
        training={"recipe": "risk", "params": params, "data": fingerprint(data.data, y),
                  "train_rows": len(x_train), "test_rows": len(x_test)},
    )
    return BuiltModel(model, card)


RECIPES: dict[str, Callable[[dict[str, Any]], BuiltModel]] = {
    "iris-knn": build_iris_knn,
    "sentiment": build_sentiment,
    "regression-gp": build_regression_gp,
    "risk": build_risk,
}
