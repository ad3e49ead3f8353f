"""The training engine, free of any transport: a validated request -> rows -> held-out split ->
fit -> held-out metrics -> the champion scored on the same rows -> a new version directory,
written beside the model and renamed into place (the next integer version), its card carrying the
run -> the promotion decision carried out through the serving state.

Nothing is written before the model is fitted and measured, and the only write is the new
directory, so a failed run never touches an existing version.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import redis
import skops.io as sio
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

from protoserve_models.adding import algorithm, answer_metrics, check_parity
from protoserve_models.builtin.recipes import RECIPE_SPECS, held_out_metrics, load_config, recipe_params, reference_sample
from protoserve_models.card import CARD_FILE, MODEL_FILE, ModelCard
from protoserve_models.inputs import InputLimits
from protoserve_models.model import LoadedModel
from protoserve_models.repository import (
    MODEL_NAME_PATTERN,
    PROJECT_TRUSTED_TYPES,
    VERSION_PATTERN,
    check_model_name,
    load_model_file,
)
from protoserve_models.settings import ModelSettings
from protoserve_models.training import data as datasets
from protoserve_models.training import refit
from protoserve_models.training.feedback import read_examples
from protoserve_models.training.promotion import decide
from protoserve_models.training.recipes import ResolvedRecipe, resolve
from protoserve_models.training.record import TrainingSpec, initial_run, timestamp
from protoserve_models.training.refit import REFIT
from protoserve_models.training.serving import RedisServing
from protoserve_models.training.settings import TrainingSettings
from protoserve_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ProtoserveError
from protoserve_runtime.redis_settings import RedisSettings

log = logging.getLogger(__name__)


class TrainingFailed(FailedPrecondition):
    """The rows or the recipe cannot make a model (found while training): the run FAILS, no retry."""


class RunStopped(Exception):
    """The run was cancelled or another worker took it over: stop without writing anything."""


class ServingState(Protocol):
    """The serving side's view of a model's default version (inference_svc/lifecycle/serving_state)."""

    def default_version(self, model: str) -> str: ...  # "" when none was set

    def promote(self, model: str, version: str) -> str: ...  # the previous default


Progress = Callable[[float], None]  # raises RunStopped when the run must stop


@dataclass(frozen=True)
class Fitted:
    """A fitted, measured new version, not written yet."""

    card: ModelCard  # with its held-out metrics
    estimator: Any
    recipe: str
    parameters: dict[str, Any]
    fingerprint: str
    train_rows: int
    test_rows: int
    rows_by_source: dict[str, int]
    challenger_score: float | None  # None: the task has no held-out score
    champion_score: float | None
    champion_error: str
    targets: tuple[str, ...] = ()  # the columns that held the true answer


@dataclass(frozen=True)
class Engine:
    repository: Path
    trusted_types: tuple[str, ...]
    serving: ServingState
    margin: float
    examples: Callable[[str], list[Any]]  # model -> its labeled examples (LabeledExample messages)
    limits: InputLimits
    max_csv_bytes: int

    # --- what the model is now ------------------------------------------------------------------

    def versions_on_disk(self, model: str) -> list[str]:
        directory = self.repository / model
        if not directory.is_dir():
            return []
        return sorted((v.name for v in directory.iterdir() if v.is_dir() and VERSION_PATTERN.match(v.name)), key=int)

    def champion(self, model: str) -> str:
        """The version that serves calls naming none: the serving state's default, else the newest."""
        on_disk = self.versions_on_disk(model)
        chosen = self.serving.default_version(model)
        if chosen and chosen in on_disk:
            return chosen
        return on_disk[-1] if on_disk else ""

    def model_card(self, model: str) -> tuple[ModelCard, str]:
        """The card of the model's default version and that version, or, for a built-in model not
        built yet, its recipe's card template and ""."""
        check_model_name(model)
        version = self.champion(model)
        if version:
            try:
                return ModelCard.read(self.repository / model / version), version
            except ValueError as exc:
                raise FailedPrecondition(f"the card of {model} version {version} cannot be read: {exc}") from None
        if model in RECIPE_SPECS:
            spec = RECIPE_SPECS[model]
            return spec.template(recipe_params(spec, load_config())), ""
        raise NotFound(f"model {model!r} is not in the repository and is not a built-in model")

    @staticmethod
    def recipe_name(card: ModelCard, requested: str) -> str:
        """As asked; else the recipe on the default version's card; else "refit": a model a user
        added has no recipe, and is trained again from its own estimator."""
        return requested or str(card.training.get("recipe", "")) or REFIT

    def recipe_for(self, card: ModelCard, name: str, overrides: dict[str, Any]) -> ResolvedRecipe:
        """A built-in recipe or an allowed estimator (not "refit"), with every parameter."""
        name = self.recipe_name(card, name)
        if card.input_format == "dataframe" or not (card.is_numeric or card.is_text):
            raise InvalidArgument.for_field(
                "recipe", f"{card.name} takes named columns of their own types, which {name} cannot take; "
                f"train it again with recipe {REFIT!r} (its own pipeline fitted on new rows)"
            )
        return resolve(name, card.task, card.is_text, overrides, int(load_config()["split"]["random_state"]))

    def refit_parameters(self, model: str, version: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """Overrides of the version's own parameters, checked against its estimator."""
        if not overrides:
            return {}
        try:
            served = load_model_file(self.repository / model / version, self.trusted_types)
        except Exception as exc:
            raise FailedPrecondition(f"version {version} of {model} cannot be loaded to train again: {exc}") from None
        return refit.checked_parameters(served.estimator, overrides)

    # --- the run --------------------------------------------------------------------------------

    def parts(self, spec: TrainingSpec, card: ModelCard) -> tuple[list[datasets.Part], int]:
        """The rows of each chosen source, and the labeled examples that did not fit the model."""
        parts: list[datasets.Part] = []
        skipped = 0
        if spec.builtin:
            builtin = RECIPE_SPECS[spec.model]
            params = spec.params if spec.recipe == spec.model else recipe_params(builtin, load_config())
            parts.append(datasets.builtin_part(builtin.data(params)))
        if spec.csv:
            parts.append(datasets.csv_part(card, spec.csv.encode(), spec.label_column, self.max_csv_bytes, self.limits))
        if spec.feedback:
            part, skipped = _feedback(card, self.examples(spec.model))
            parts.append(part)
        return parts, skipped

    def written_before(self, spec: TrainingSpec) -> dict[str, Any] | None:
        """The run, when an earlier attempt of it wrote its version and then stopped."""
        for version in reversed(self.versions_on_disk(spec.model)):
            try:
                run = ModelCard.read(self.repository / spec.model / version).training.get("run")
            except ValueError:
                continue
            if isinstance(run, dict) and run.get("run_id") == spec.run_id:
                return run
        return None

    def train(self, spec: TrainingSpec, progress: Progress) -> dict[str, Any]:
        """Run the training; returns the run (protobuf JSON form) of the version it made."""
        earlier = self.written_before(spec)
        if earlier is not None:  # finish what the earlier attempt started; never a second version
            if earlier.get("promotion", {}).get("promoted"):
                self.serving.promote(spec.model, str(earlier["version"]))
            return earlier
        started = time.time()
        clock = time.perf_counter()
        card, champion = self.model_card(spec.model)
        if champion and not self.serving.default_version(spec.model):
            # Pin the champion, long before the new version appears: with no default set, the newest
            # version would take the traffic on a replica that sees its directory first.
            self.serving.promote(spec.model, champion)
        if spec.recipe == REFIT:
            fitted = self._refit(spec, card, champion, progress)
        else:
            fitted = self._fit_recipe(spec, card, champion, progress)
        decision = decide(spec.mode, fitted.card.task, fitted.challenger_score, champion, fitted.champion_score,
                          self.margin, fitted.champion_error)
        progress(0.9)
        run = {
            **initial_run(spec),
            "recipe": fitted.recipe,
            "parameters": fitted.parameters,
            "state": "TRAINING_RUN_STATE_SUCCEEDED",
            "progress": 1.0,
            "data": {"sha256": fitted.fingerprint, "train_rows": fitted.train_rows, "test_rows": fitted.test_rows,
                     "rows_by_source": fitted.rows_by_source},
            "metrics": fitted.card.metrics,
            "promotion": decision.to_dict(),
            "start_time": timestamp(started),
            "duration_seconds": round(time.perf_counter() - clock, 3),
        }
        run["finish_time"] = timestamp(time.time())
        version = self._write(spec, fitted, run, progress)
        run["version"] = version
        if decision.promoted:
            self.serving.promote(spec.model, version)
        log.info("training run succeeded", extra={"run": spec.run_id, "model": spec.model, "version": version,
                                                   "metrics": fitted.card.metrics, "promoted": decision.promoted})
        return run

    def _fit_recipe(self, spec: TrainingSpec, card: ModelCard, champion: str, progress: Progress) -> Fitted:
        """A built-in recipe or an allowed estimator, fitted on numeric or text rows."""
        recipe = self.recipe_for(card, spec.recipe, spec.params)
        config = load_config()
        seed, test_size = int(config["split"]["random_state"]), float(config["split"]["test_size"])
        parts, skipped = self.parts(spec, card)
        if sum(len(p.y) for p in parts) == 0:
            raise TrainingFailed("the chosen data sources hold no rows")
        progress(0.1)
        try:
            rows = datasets.split(parts, card.task == "classification", test_size, seed)
        except ValueError as exc:
            raise TrainingFailed(f"the rows cannot be split into training and held-out rows: {exc}") from None
        if card.task == "classification" and len(set(rows.y_train)) < 2:
            raise TrainingFailed(
                f"the training rows hold a single class ({str(rows.y_train[0])!r}); a classifier needs at least two"
            )
        progress(0.15)
        estimator = recipe.estimator(seed)
        try:
            estimator.fit(rows.x_train, rows.y_train)
        except (ValueError, TypeError) as exc:  # scikit-learn's word on rows or parameters it cannot use
            raise TrainingFailed(f"fitting {recipe.name} failed: {exc}") from None
        progress(0.8)
        metrics = held_out_metrics(card.task, estimator, rows.x_test, rows.y_test, rows.test_domains)
        labels = tuple(str(c) for c in estimator.classes_) if card.task == "classification" else ()
        new_card = replace(
            card,
            labels=labels,
            metrics=metrics,
            algorithm=recipe.algorithm(estimator),
            training_data=_sources_text(spec, rows.rows_by_source, skipped),
            reference_sample=reference_sample(rows.x_train, card.feature_names, int(config["split"]["reference_rows"]), seed),
        )
        challenger = _score(LoadedModel(new_card, estimator), rows.x_test, rows.y_test)
        champion_score, champion_error = self._champion_score(spec.model, champion, rows.x_test, rows.y_test)
        return Fitted(new_card, estimator, recipe.name, recipe.params, rows.fingerprint, len(rows.y_train),
                      len(rows.y_test), rows.rows_by_source, challenger, champion_score, champion_error)

    def _refit(self, spec: TrainingSpec, card: ModelCard, champion: str, progress: Progress) -> Fitted:
        """The default version's own estimator, cleared and fitted on the uploaded and labeled rows
        (protoserve_models/training/refit.py)."""
        if not champion:
            raise TrainingFailed(f"model {spec.model} has no version to train again")
        try:
            served = load_model_file(self.repository / spec.model / champion, self.trusted_types)
        except Exception as exc:
            raise TrainingFailed(f"version {champion} of {spec.model} cannot be loaded to train again: {exc}") from None
        config = load_config()
        seed, test_size = int(config["split"]["random_state"]), float(config["split"]["test_size"])
        targets = refit.label_columns(card, spec.label_column)
        parts: list[refit.Rows] = []
        skipped = 0
        if spec.csv:
            parts.append(refit.csv_rows(card, spec.csv.encode(), targets, self.max_csv_bytes))
        if spec.feedback:
            from_feedback, skipped = refit.feedback_rows(card, self.examples(spec.model))
            parts.append(from_feedback)
        rows = refit.Rows.join(parts)
        if len(rows) < 2:
            raise TrainingFailed(f"{len(rows)} row(s): at least two are needed to hold some out")
        progress(0.1)
        try:
            inputs = refit.model_inputs(refit.training_card(card, rows.rows), rows.rows, self.limits.max_text_length)
        except InvalidArgument as exc:
            raise TrainingFailed(exc.message) from None
        supervised = card.task in refit.SUPERVISED
        answers = refit.fit_targets(card, rows.truths, served.estimator) if supervised else None
        train, test = _split_indices(len(rows), answers if card.task == "classification" else None, test_size, seed)
        if card.task == "classification" and answers is not None and len(set(answers[train].tolist())) < 2:
            raise TrainingFailed("the training rows hold a single class; a classifier needs at least two")
        progress(0.15)
        estimator = refit.new_estimator(served.estimator, spec.params)
        x_train, x_test = _take(inputs, train), _take(inputs, test)
        try:
            estimator.fit(x_train, answers[train]) if answers is not None else estimator.fit(x_train)
        except Exception as exc:  # a user's pipeline may raise anything on rows it cannot use
            raise TrainingFailed(f"fitting {type(estimator).__name__} failed: {exc}") from None
        progress(0.8)
        held_out = rows.take(test)
        try:
            new_card = refit.version_card(card, estimator, x_train, rows.rows, targets)
            predicted = estimator.predict(x_test)
            challenger = LoadedModel(new_card, estimator)
            check_parity(challenger, held_out.rows, predicted)
        except Exception as exc:  # the new version would not serve what it predicts: nothing is written
            raise TrainingFailed(f"the refitted model cannot be served: {exc}") from None
        truth = answers[test] if answers is not None else None
        new_card = replace(
            new_card,
            metrics=answer_metrics(new_card, truth, predicted) if truth is not None else {},
            algorithm=algorithm(estimator),
            training_data=_sources_text(spec, rows.counts(), skipped),
            reference_sample=refit.reference_columns(card, rows.take(train).rows, int(config["split"]["reference_rows"]), seed),
        )
        challenger_score = champion_score = None
        champion_error = ""
        if truth is not None:
            y_text = truth if card.task == "regression" else np.array([str(v) for v in truth.tolist()], dtype=object)
            challenger_score = _score(challenger, x_test, y_text)
            champion_score, champion_error = self._champion_score(spec.model, champion, x_test, y_text, served)
        return Fitted(new_card, estimator, REFIT, dict(spec.params), rows.fingerprint(), len(train), len(test),
                      rows.counts(), challenger_score, champion_score, champion_error, tuple(targets))

    def _champion_score(self, model: str, champion: str, x: Any, y: np.ndarray,
                        loaded: LoadedModel | None = None) -> tuple[float | None, str]:
        """The default version's score on the held-out rows; a broken champion is just not beaten."""
        if not champion:
            return None, ""
        try:
            served = loaded or load_model_file(self.repository / model / champion, self.trusted_types)
            return _score(served, x, y), ""
        except Exception as exc:
            return None, str(exc)

    def _write(self, spec: TrainingSpec, fitted: Fitted, run: dict[str, Any], progress: Progress) -> str:
        """Write the version beside the model and rename it into place as the next free version."""
        if not MODEL_NAME_PATTERN.match(spec.model):
            raise InvalidArgument.for_field("model", f"{spec.model!r} is not a model name")
        parent = self.repository / spec.model
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".train-{spec.run_id}-", dir=parent))
        try:
            sio.dump(fitted.estimator, staging / MODEL_FILE)
            progress(0.95)  # last chance to stop: after the rename the version exists
            for _ in range(100):
                on_disk = self.versions_on_disk(spec.model)
                version = str(int(on_disk[-1]) + 1 if on_disk else 1)
                training = {"recipe": run["recipe"], "params": run["parameters"], "data": "sha256:" + run["data"]["sha256"],
                            "train_rows": run["data"]["train_rows"], "test_rows": run["data"]["test_rows"],
                            "run": {**run, "version": version}}
                if fitted.targets:
                    training["target"] = list(fitted.targets)
                card = replace(fitted.card, version=version, training=training)
                (staging / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
                try:
                    os.rename(staging, parent / version)  # fails if another run took the number
                    return version
                except OSError:
                    if not (parent / version).exists():
                        raise
            raise ProtoserveError("no free version number after 100 tries")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _feedback(card: ModelCard, examples: list[Any]) -> tuple[datasets.Part, int]:
    from protoserve_models.training.feedback import feedback_part  # protobuf code only where feedback is read

    return feedback_part(card, examples)


def _split_indices(count: int, labels: np.ndarray | None, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices, stratified by label where every class can be split."""
    indices = np.arange(count)
    stratify = None
    if labels is not None:
        counts = Counter(labels.tolist())
        if min(counts.values()) >= 2 and len(counts) <= round(count * test_size):
            stratify = labels
    try:
        train, test = train_test_split(indices, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise TrainingFailed(f"the rows cannot be split into training and held-out rows: {exc}") from None
    return np.sort(train), np.sort(test)


def _take(inputs: Any, indices: np.ndarray) -> Any:
    if isinstance(inputs, pd.DataFrame):
        return inputs.iloc[indices].reset_index(drop=True)
    return inputs[indices]


def _score(model: LoadedModel, x: Any, y: np.ndarray) -> float:
    """Accuracy (classifiers) or R² (regressors) through the serving path's predict."""
    outputs = model.predict(x)
    if model.card.task == "classification":
        assert outputs.label_indices is not None
        predicted = np.array(model.card.labels)[outputs.label_indices]
        return float(accuracy_score(y, predicted))
    assert outputs.values is not None
    return float(r2_score(y, outputs.values))


def _sources_text(spec: TrainingSpec, counts: dict[str, int], skipped: int) -> str:
    parts = []
    if "builtin" in counts:
        builtin = RECIPE_SPECS[spec.model]
        source = builtin.template(recipe_params(builtin, load_config())).training_data
        parts.append(f"{counts['builtin']} built-in rows: {source}")
    if "csv" in counts:
        parts.append(f"{counts['csv']} rows uploaded as CSV with training run {spec.run_id}")
    if "feedback" in counts:
        note = f" ({skipped} examples that did not fit the model left out)" if skipped else ""
        parts.append(f"{counts['feedback']} predictions labeled through the monitoring service's feedback{note}")
    return " + ".join(parts)


def build_engine(
    client: redis.Redis, redis_settings: RedisSettings, models: ModelSettings, settings: TrainingSettings, limits: InputLimits
) -> Engine:
    """The engine of the service (checks at TrainModel) and of every job worker (the runs)."""
    stream = redis_settings.labeled_examples_stream
    return Engine(
        repository=models.model_repository,
        trusted_types=PROJECT_TRUSTED_TYPES + models.trusted_types,
        serving=RedisServing(client, redis_settings.redis_prefix),
        margin=settings.promotion_margin,
        examples=lambda model: read_examples(client, stream, model),
        limits=limits,
        max_csv_bytes=settings.training_max_csv_bytes,
    )
