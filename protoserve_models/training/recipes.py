"""Which recipe a run uses and with which parameters: a built-in recipe (recipes.toml defaults) or an
allowed scikit-learn estimator named by its dotted path.

The allow-list holds estimators that skops stores as plain data, that the repository trusts at load
(scikit-learn types), and that answer the way the serving side needs (predict_proba for a
classifier). Overrides are checked here, at TrainModel time: an unknown parameter or a value the
estimator refuses is INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.base import clone

from protoserve_models.builtin.recipes import RECIPE_SPECS, Recipe, load_config, recipe_params
from protoserve_models.card import Task
from protoserve_runtime.errors import InvalidArgument

ALLOWED_ESTIMATORS: dict[str, Task] = {
    "sklearn.linear_model.LogisticRegression": "classification",
    "sklearn.neighbors.KNeighborsClassifier": "classification",
    "sklearn.tree.DecisionTreeClassifier": "classification",
    "sklearn.ensemble.RandomForestClassifier": "classification",
    "sklearn.ensemble.ExtraTreesClassifier": "classification",
    "sklearn.ensemble.GradientBoostingClassifier": "classification",
    "sklearn.naive_bayes.GaussianNB": "classification",
    "sklearn.linear_model.LinearRegression": "regression",
    "sklearn.linear_model.Ridge": "regression",
    "sklearn.neighbors.KNeighborsRegressor": "regression",
    "sklearn.tree.DecisionTreeRegressor": "regression",
    "sklearn.ensemble.RandomForestRegressor": "regression",
    "sklearn.ensemble.GradientBoostingRegressor": "regression",
    "sklearn.gaussian_process.GaussianProcessRegressor": "regression",
}


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe with every parameter, defaults included."""

    name: str
    task: Task
    params: dict[str, Any]
    builtin: Recipe | None  # None: an allowed estimator

    def estimator(self, seed: int) -> Any:
        if self.builtin is not None:
            return self.builtin.estimator(self.params, seed)
        return _estimator_class(self.name)(**self.params)

    def algorithm(self, fitted: Any) -> str:
        if self.builtin is not None:
            return self.builtin.algorithm(self.params, fitted)
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name.rsplit('.', 1)[1]}({shown})"


def _estimator_class(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def coerce_parameter(name: str, value: Any, default: Any) -> Any:
    """A JSON value (numbers arrive as floats) as the type of the parameter's default."""
    field = f"parameters.{name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InvalidArgument.for_field(field, f"must be true or false, not {value!r}")
        return value
    if isinstance(value, float) and value.is_integer() and not isinstance(default, float):
        return int(value)  # 7.0 from JSON is the integer 7 unless the parameter is a float
    if isinstance(default, (int, float)) and not isinstance(value, (int, float)):
        raise InvalidArgument.for_field(field, f"must be a number, not {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise InvalidArgument.for_field(field, f"must be a string, not {value!r}")
    return value


def _merge(recipe: str, defaults: dict[str, Any], overrides: Mapping[str, Any], fixed: tuple[str, ...]) -> dict[str, Any]:
    params = dict(defaults)
    for name, value in overrides.items():
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise InvalidArgument.for_field(f"parameters.{name}", f"is not a parameter of recipe {recipe} (known: {known})")
        if name in fixed:
            raise InvalidArgument.for_field(f"parameters.{name}", "defines the model's inputs; a training run cannot change it")
        params[name] = coerce_parameter(name, value, defaults[name])
    return params


def resolve(name: str, task: Task, is_text: bool, overrides: Mapping[str, Any], seed: int) -> ResolvedRecipe:
    """The recipe for a model of the given task; raises INVALID_ARGUMENT naming what is wrong."""
    if name in RECIPE_SPECS:
        spec = RECIPE_SPECS[name]
        if spec.task != task:
            raise InvalidArgument.for_field("recipe", f"{name} makes a {spec.task} model; this model is a {task} model")
        params = _merge(name, recipe_params(spec, load_config()), overrides, spec.input_params)
        try:
            spec.check(params)
        except ValueError as exc:
            raise InvalidArgument.for_field("parameters", str(exc)) from None
        return ResolvedRecipe(name, task, params, spec)
    if name not in ALLOWED_ESTIMATORS:
        raise InvalidArgument.for_field(
            "recipe", f"{name!r} is neither a built-in recipe ({', '.join(sorted(RECIPE_SPECS))}) nor an allowed "
            f"estimator ({', '.join(sorted(ALLOWED_ESTIMATORS))})"
        )
    if ALLOWED_ESTIMATORS[name] != task:
        kind = ALLOWED_ESTIMATORS[name]
        raise InvalidArgument.for_field("recipe", f"{name} is a {kind} estimator; this model is a {task} model")
    if is_text:
        raise InvalidArgument.for_field("recipe", f"{name} takes numeric features; a text model needs a built-in recipe")
    estimator = _estimator_class(name)()
    defaults = estimator.get_params(deep=False)
    params = _merge(name, defaults, overrides, ())
    if "random_state" in defaults and "random_state" not in overrides:
        params["random_state"] = seed  # deterministic unless asked otherwise
    candidate = clone(estimator).set_params(**params)
    try:
        # scikit-learn checks parameter values when fitting; its own check, run early, names the bad one.
        candidate._validate_params()
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.for_field("parameters", str(exc)) from None
    changed = {k: v for k, v in params.items() if k in overrides or k == "random_state"}
    full = {k: v for k, v in params.items() if _is_plain(v)} | changed
    return ResolvedRecipe(name, task, full, None)


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
