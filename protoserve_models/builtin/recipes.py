"""The built-in models: how each is trained, from data the project has, deterministically.

Each recipe is data (the rows the project ships), an estimator made from parameters, and a card
template; ``build`` fits the estimator on a split and measures held-out metrics on rows the
estimator never saw. Training runs (inference_svc/training/) reuse the same parts, so a run on
the built-in data with the default parameters makes the model ``protoserve models build`` makes.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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

from protoserve_models.builtin.sentiment_data import SENTIMENT_SOURCE, load_sentiment_corpus
from protoserve_models.builtin.text_features import VaderLexiconFeatures
from protoserve_models.card import Feature, ModelCard, Task

CONFIG_PATH = Path(__file__).with_name("recipes.toml")
Params = dict[str, Any]


@dataclass(frozen=True)
class BuiltModel:
    estimator: Any
    card: ModelCard


@dataclass(frozen=True)
class RecipeData:
    """A recipe's rows: x a float matrix (rows x features) or a 1-D object array of texts, y the
    answers, strata the key the split is stratified by (None: not stratified), domains the group
    of each row that gets its own held-out accuracy (None: no groups)."""

    x: np.ndarray
    y: np.ndarray
    strata: list[str] | None = None
    domains: list[str] | None = None


@dataclass(frozen=True)
class Recipe:
    name: str
    task: Task
    data: Callable[[Params], RecipeData]
    estimator: Callable[[Params, int], Any]  # unfitted, from parameters and the split's seed
    template: Callable[[Params], ModelCard]  # the card before training: no metrics, no sample
    algorithm: Callable[[Params, Any], str]  # from parameters and the fitted estimator
    # Parameters that define the model's inputs: fixed once the model exists.
    input_params: tuple[str, ...] = ()

    def check(self, params: Params) -> None:
        """Raise ValueError naming a parameter whose value the recipe cannot use."""
        if self.name == "iris-knn" and params["metric"] not in ("euclidean", "manhattan"):
            raise ValueError("iris-knn: metric must be euclidean or manhattan")


def load_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def fingerprint(*arrays: Any) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.asarray(array).astype(str).tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def classification_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "f1_macro": round(float(f1_score(y_true, y_pred, average="macro")), 4),
    }


def regression_metrics(y_true: Any, mean: Any, std: Any | None) -> dict[str, float]:
    metrics = {
        "rmse": round(float(np.sqrt(mean_squared_error(y_true, mean))), 4),
        "mae": round(float(mean_absolute_error(y_true, mean)), 4),
        "r2": round(float(r2_score(y_true, mean)), 4),
    }
    if std is not None:
        metrics["coverage_95"] = round(float((np.abs(y_true - mean) <= 1.96 * std).mean()), 4)
    return metrics


def reference_sample(x: Any, names: Sequence[str], rows: int, seed: int) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), size=min(rows, len(x)), replace=False)
    if np.asarray(x).ndim == 1:
        return {names[0]: [str(x[i]) for i in picked]}
    return {name: [round(float(x[i, j]), 6) for i in picked] for j, name in enumerate(names)}


def held_out_metrics(recipe_task: Task, estimator: Any, x_test: Any, y_test: Any,
                     domains: Sequence[str] | None = None) -> dict[str, float]:
    if recipe_task == "regression":
        try:
            mean, std = estimator.predict(x_test, return_std=True)
        except TypeError:  # the estimator gives no uncertainty
            mean, std = estimator.predict(x_test), None
        return regression_metrics(y_test, mean, std)
    predicted = estimator.predict(x_test)
    metrics = classification_metrics(y_test, predicted)
    if domains is not None:
        groups = np.asarray(domains)
        for domain in sorted(set(domains)):
            mask = groups == domain
            metrics[f"accuracy_{domain}"] = round(float(accuracy_score(y_test[mask], predicted[mask])), 4)
    return metrics


# --- iris-knn ---------------------------------------------------------------------------------
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris_data(params: Params) -> RecipeData:
    data = load_iris()
    y = np.array([str(n) for n in data.target_names])[data.target]
    return RecipeData(data.data, y, strata=[str(v) for v in y])


def _iris_template(params: Params) -> ModelCard:
    return ModelCard(
        name="iris-knn", version="1", task="classification",
        description="Iris species from flower measurements, by k-nearest neighbours.",
        inputs=tuple(Feature(n, "double", f"{n.replace('_', ' ')} in centimetres") for n in IRIS_FEATURES),
        training_data="Iris data set (Fisher, 1936), as bundled with scikit-learn (BSD-3-Clause).",
    )


# --- sentiment --------------------------------------------------------------------------------
def _sentiment_data(params: Params) -> RecipeData:
    corpus = load_sentiment_corpus(float(params["neutral_threshold"]))
    strata = [f"{d}:{label}" for d, label in zip(corpus.domains, corpus.labels)]
    return RecipeData(np.array(corpus.texts, dtype=object), np.array(corpus.labels), strata, corpus.domains)


def _sentiment_estimator(params: Params, seed: int) -> Any:
    return Pipeline([
        ("features", FeatureUnion(
            [("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
             ("lexicon", VaderLexiconFeatures())],
            transformer_weights={"lexicon": float(params["lexicon_weight"])},
        )),
        ("classifier", LogisticRegression(C=float(params["regularization_c"]), max_iter=3000)),
    ])


def _sentiment_template(params: Params) -> ModelCard:
    return ModelCard(
        name="sentiment", version="1", task="classification",
        description="Sentiment of English text: negative, neutral or positive, with a score.",
        inputs=(Feature("text", "string", "The text to classify: a post, a review, a sentence of news opinion.", 5000),),
        training_data=SENTIMENT_SOURCE,
    )


# --- regression-gp ----------------------------------------------------------------------------
GP_DESCRIPTIONS = {"age": "age in years", "bmi": "body mass index", "bp": "average blood pressure (mm Hg)",
                   "s5": "log of serum triglycerides level", "s1": "total serum cholesterol",
                   "s2": "low-density lipoproteins", "s3": "high-density lipoproteins",
                   "s4": "total cholesterol / HDL", "s6": "blood sugar level", "sex": "sex"}


def _gp_data(params: Params) -> RecipeData:
    data = load_diabetes(scaled=False)
    columns = [list(data.feature_names).index(str(n)) for n in params["features"]]
    return RecipeData(data.data[:, columns], data.target)


def _gp_estimator(params: Params, seed: int) -> Any:
    kernel = ConstantKernel(1.0) * RBF(length_scale=np.ones(len(params["features"]))) + WhiteKernel(1.0)
    return Pipeline([
        ("scale", StandardScaler()),
        ("gp", GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)),
    ])


def _gp_template(params: Params) -> ModelCard:
    names = [str(n) for n in params["features"]]
    return ModelCard(
        name="regression-gp", version="1", task="regression",
        description="Disease progression one year after baseline (diabetes), with predictive variance.",
        inputs=tuple(Feature(n, "double", GP_DESCRIPTIONS.get(n, n)) for n in names),
        training_data="Diabetes data set (Efron et al., 2004), as bundled with scikit-learn (BSD-3-Clause).",
    )


# --- risk -------------------------------------------------------------------------------------
def _risk_data(params: Params) -> RecipeData:
    data = load_breast_cancer()
    y = np.array([str(n) for n in data.target_names])[data.target]
    return RecipeData(data.data, y, strata=[str(v) for v in y])


def _risk_params(params: Params) -> Params:
    return {k: params[k] for k in ("n_estimators", "max_depth", "learning_rate")}


def _risk_template(params: Params) -> ModelCard:
    return ModelCard(
        name="risk", version="1", task="classification",
        description="Risk that a breast mass is malignant, from 30 measurements of cell nuclei.",
        inputs=tuple(Feature(str(n).replace(" ", "_"), "double", str(n)) for n in load_breast_cancer().feature_names),
        training_data="Breast Cancer Wisconsin (Diagnostic) data set, as bundled with scikit-learn (BSD-3-Clause).",
    )


RECIPE_SPECS: dict[str, Recipe] = {
    "iris-knn": Recipe(
        "iris-knn", "classification", _iris_data,
        lambda p, seed: KNeighborsClassifier(n_neighbors=int(p["n_neighbors"]), metric=str(p["metric"])),
        _iris_template,
        lambda p, model: f"KNeighborsClassifier(n_neighbors={int(p['n_neighbors'])}, metric={p['metric']})",
    ),
    "sentiment": Recipe(
        "sentiment", "classification", _sentiment_data, _sentiment_estimator, _sentiment_template,
        lambda p, model: "TF-IDF word 1-2 grams + VADER lexicon scores -> multinomial LogisticRegression",
    ),
    "regression-gp": Recipe(
        "regression-gp", "regression", _gp_data, _gp_estimator, _gp_template,
        lambda p, model: f"StandardScaler -> GaussianProcessRegressor({model.named_steps['gp'].kernel_})",
        input_params=("features",),
    ),
    "risk": Recipe(
        "risk", "classification", _risk_data,
        lambda p, seed: GradientBoostingClassifier(**_risk_params(p), random_state=seed),
        _risk_template,
        lambda p, model: "GradientBoostingClassifier(" + ", ".join(f"{k}={v}" for k, v in _risk_params(p).items()) + ")",
    ),
}


def recipe_params(recipe: Recipe, config: dict[str, Any]) -> Params:
    """The recipe's parameters as recipes.toml sets them (the recorded ones, for iris-knn's two)."""
    own = dict(config[recipe.name])
    if recipe.name == "iris-knn":
        own = {"n_neighbors": int(own["n_neighbors"]), "metric": str(own["metric"])}
    if recipe.name == "regression-gp":
        own = {"features": [str(n) for n in own["features"]]}
    if recipe.name == "risk":
        own = _risk_params(own)
    return own


def build(recipe: Recipe, config: dict[str, Any]) -> BuiltModel:
    """Train a built-in model from its own data and recipes.toml, as `protoserve models build` does."""
    split = config["split"]
    params = recipe_params(recipe, config)
    recipe.check(params)
    data = recipe.data(params)
    indices = np.arange(len(data.y))
    train, test = train_test_split(
        indices, test_size=split["test_size"], random_state=split["random_state"], stratify=data.strata
    )
    model = recipe.estimator(params, split["random_state"]).fit(data.x[train], data.y[train])
    domains = None if data.domains is None else [data.domains[i] for i in test]
    template = recipe.template(params)
    card = replace(
        template,
        labels=tuple(str(c) for c in model.classes_) if recipe.task == "classification" else (),
        metrics=held_out_metrics(recipe.task, model, data.x[test], data.y[test], domains),
        algorithm=recipe.algorithm(params, model),
        reference_sample=reference_sample(data.x[train], template.feature_names, split["reference_rows"],
                                          split["random_state"]),
        training={"recipe": recipe.name, "params": params, "data": fingerprint(data.x, data.y),
                  "train_rows": len(train), "test_rows": len(test)},
    )
    return BuiltModel(model, card)


def build_iris_knn(config: dict[str, Any]) -> BuiltModel:
    return build(RECIPE_SPECS["iris-knn"], config)


def build_sentiment(config: dict[str, Any]) -> BuiltModel:
    return build(RECIPE_SPECS["sentiment"], config)


def build_regression_gp(config: dict[str, Any]) -> BuiltModel:
    return build(RECIPE_SPECS["regression-gp"], config)


def build_risk(config: dict[str, Any]) -> BuiltModel:
    return build(RECIPE_SPECS["risk"], config)


RECIPES: dict[str, Callable[[dict[str, Any]], BuiltModel]] = {
    "iris-knn": build_iris_knn,
    "sentiment": build_sentiment,
    "regression-gp": build_regression_gp,
    "risk": build_risk,
}
