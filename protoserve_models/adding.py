"""``protoserve models add``: a user's fitted scikit-learn model into the repository as its next
version, with a card inferred from the estimator and a sample of its data.

Nothing is written unless the model, read back from the skops file it will be served from,
answers the sample through protoserve's own input path (JSON-form rows → rows_to_inputs →
LoadedModel.predict) exactly as the estimator answers the same rows locally.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score

from protoserve_models.card import CARD_FILE, MODEL_FILE, ModelCard
from protoserve_models.inputs import InputLimits, rows_to_inputs
from protoserve_models.loading import UntrustedModelError, read_estimator, untrusted_types
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_models.model_files import UserModel, read_user_model
from protoserve_models.repository import VERSION_PATTERN, check_model_name
from protoserve_models.signature import Signature, infer_signature, json_columns, local_inputs

REFERENCE_ROWS = 200
REFERENCE_SEED = 0
# Regression values served must equal the estimator's to this relative tolerance.
VALUE_RTOL = 1e-9
VALUE_ATOL = 1e-12


class AddModelError(ValueError):
    """The model cannot be added as it is; the message says why."""


def read_sample(sample: pd.DataFrame | Path | str) -> pd.DataFrame:
    """The sample as a DataFrame: given as one, or read from a CSV or Parquet file."""
    if isinstance(sample, pd.DataFrame):
        return sample.reset_index(drop=True)
    path = Path(sample)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise AddModelError(f"{path}: the sample must be a .csv or .parquet file")


def add_model(
    name: str,
    estimator_or_path: Any,
    sample: pd.DataFrame | Path | str | None,
    target: str | Sequence[str] | None,
    repository: Path,
    trust_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    strict_categories: bool = False,
    description: str = "",
) -> Path:
    """Write the model as the next version of ``name`` under repository; the version's directory.
    target: the sample's label column (several, comma-separated, for a multi-output regressor),
    for held-out metrics; strict_categories: refuse categories the sample never showed."""
    check_model_name(name, "name")
    trusted = tuple(trusted_types)
    user = _user_model(estimator_or_path, trust_pickle, trusted)
    frame = _sample_frame(sample, user)
    targets = _targets(target, frame)
    try:
        signature = infer_signature(user.estimator, frame, targets)
        expected = user.estimator.predict(local_inputs(frame, signature.inputs, signature.input_format))
    except AddModelError:
        raise
    except Exception as exc:  # the signature's own errors and the estimator's failures alike
        raise AddModelError(f"cannot serve this model: {exc}") from exc
    model_dir = repository / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".add-", dir=model_dir))
    try:
        sio.dump(user.estimator, staging / MODEL_FILE)
        _check_trusted(staging / MODEL_FILE, trusted)
        card = _card(name, "1", signature, frame, user, strict_categories, description, targets)
        served = LoadedModel(card, read_estimator(staging / MODEL_FILE, trusted))
        _check_parity(served, frame, expected)
        if targets:
            truth = frame[targets[0]] if card.task == "classification" else frame[list(targets)]
            card = replace(card, metrics=answer_metrics(card, truth.to_numpy(), expected))
        return _publish(staging, model_dir, card)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _user_model(estimator_or_path: Any, trust_pickle: bool, trusted: Sequence[str]) -> UserModel:
    if isinstance(estimator_or_path, (str, os.PathLike)):
        return read_user_model(Path(estimator_or_path), trust_pickle, trusted)
    return UserModel(estimator_or_path, type(estimator_or_path).__name__)


def _sample_frame(sample: pd.DataFrame | Path | str | None, user: UserModel) -> pd.DataFrame:
    if sample is not None:
        frame = read_sample(sample)
    elif user.input_example is not None:
        frame = user.input_example
    else:
        raise AddModelError("a sample of the model's data is needed (--sample), and the model file holds no input example")
    if frame.empty:
        raise AddModelError("the sample has no rows")
    return frame


def _targets(target: str | Sequence[str] | None, frame: pd.DataFrame) -> list[str]:
    if not target:
        return []
    names = target.split(",") if isinstance(target, str) else list(target)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise AddModelError(f"the sample has no target column {', '.join(missing)}")
    return names


def _check_trusted(path: Path, trusted: Sequence[str]) -> None:
    _, refused = untrusted_types(path, trusted)
    if refused:
        raise UntrustedModelError(
            f"the model holds types that are not trusted: {', '.join(refused)}; they would run their own "
            "code when served. Trust them (--trust TYPE, and PROTOSERVE_TRUSTED_TYPES on the servers) "
            "only if you trust that code"
        )


def _card(name: str, version: str, signature: Signature, frame: pd.DataFrame, user: UserModel,
          strict_categories: bool, description: str, targets: Sequence[str]) -> ModelCard:
    reference = frame if len(frame) <= REFERENCE_ROWS else frame.sample(REFERENCE_ROWS, random_state=REFERENCE_SEED).sort_index()
    card = ModelCard(
        name=name,
        version=version,
        task=signature.task,
        description=description or f"{algorithm(user.estimator)} added from {user.source}",
        inputs=signature.inputs,
        labels=signature.labels,
        training_data=f"sample of {len(frame)} rows",
        algorithm=algorithm(user.estimator),
        reference_sample=json_columns(reference, signature.inputs),
        input_format=signature.input_format,
        outputs=signature.outputs,
        probabilities=signature.probabilities,
        decision_scores=signature.decision_scores,
        strict_categories=strict_categories,
        # The target is where a training run of this model finds the true answer by default.
        training={"target": list(targets)} if targets else {},
    )
    card.check()
    return card


def algorithm(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(estimator).__name__


def _check_parity(model: LoadedModel, frame: pd.DataFrame, expected: Any) -> None:
    """Refuses when the served model's answers for the sample's JSON-form rows differ from the
    estimator's own on the same rows."""
    columns = json_columns(frame, model.card.inputs)
    check_parity(model, [dict(zip(columns, values)) for values in zip(*columns.values())], expected)


def check_parity(model: LoadedModel, rows: Sequence[dict[str, Any]], expected: Any) -> None:
    """Refuses (AddModelError) when the served model's answers for these JSON-form rows, read
    through protoserve's input path, differ from ``expected``, the estimator's own on the same rows."""
    card = model.card
    try:
        inputs = rows_to_inputs(card, rows, InputLimits(max_rows=len(rows), max_text_length=10**9))
        outputs = model.predict(inputs)
    except Exception as exc:  # an InvalidArgument naming the row, or the model's own failure
        raise AddModelError(f"the model cannot answer its sample as protoserve would feed it: {exc}") from exc
    expected = np.asarray(expected)
    if card.task == "regression":
        values = outputs.values
        assert values is not None
        if values.shape != expected.reshape(values.shape).shape or not np.allclose(
            values, expected.reshape(values.shape).astype(np.float64), rtol=VALUE_RTOL, atol=VALUE_ATOL
        ):
            raise AddModelError("served predictions differ from the estimator's own on the sample rows")
        return
    answered = _answered_labels(card, outputs)
    wanted = _expected_labels(card, expected)
    differ = np.flatnonzero(answered != wanted)
    if differ.size:
        i = int(differ[0])
        hint = ""
        if card.task == "classification" and card.probabilities:
            hint = (" (the label served is the most probable class; a classifier whose predict says otherwise, "
                    "such as SVC(probability=True), is served when fitted with probability=False)")
        raise AddModelError(
            f"served labels differ from the estimator's own on {differ.size} of {len(rows)} sample rows, "
            f"first row {i}: {answered[i]!r} instead of {wanted[i]!r}{hint}"
        )


def _answered_labels(card: ModelCard, outputs: PredictionBatch) -> np.ndarray:
    assert outputs.label_indices is not None
    return np.array(card.labels, dtype=object)[outputs.label_indices]


def _expected_labels(card: ModelCard, predicted: np.ndarray) -> np.ndarray:
    if card.task == "anomaly_detection":
        return np.where(predicted.reshape(-1) == -1, "outlier", "inlier").astype(object)
    return np.array([str(v) for v in predicted.reshape(-1).tolist()], dtype=object)


def answer_metrics(card: ModelCard, truth: np.ndarray, predicted: Any) -> dict[str, float]:
    """Accuracy and F1 for a classifier, R², RMSE and MAE for a regressor: the true answers
    (labels, or one column per output) against the estimator's own predictions."""
    if card.task == "classification":
        wanted = np.array([str(v) for v in np.asarray(truth).reshape(-1).tolist()], dtype=object)
        answered = _expected_labels(card, np.asarray(predicted))
        average = "binary" if len(card.labels) == 2 else "macro"
        pos = {"pos_label": card.labels[1]} if average == "binary" else {}
        return {
            "accuracy": float(accuracy_score(wanted, answered)),
            "f1": float(f1_score(wanted, answered, average=average, zero_division=0, **pos)),
        }
    if card.task == "regression":
        values_true = np.asarray(truth, dtype=np.float64)
        values = np.asarray(predicted, dtype=np.float64).reshape(values_true.shape)
        return {
            "r2": float(r2_score(values_true, values)),
            "rmse": float(np.sqrt(mean_squared_error(values_true, values))),
            "mae": float(mean_absolute_error(values_true, values)),
        }
    return {}


def _next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name)]
    return max(versions, default=0) + 1


def _publish(staging: Path, model_dir: Path, card: ModelCard) -> Path:
    """Rename the staged version into place as the next free version (a concurrent writer that
    took the number first makes us take the one after)."""
    while True:
        version = str(_next_version(model_dir))
        final = replace(card, version=version)
        (staging / CARD_FILE).write_text(final.to_json(), encoding="utf-8")
        target = model_dir / version
        try:
            staging.rename(target)
        except OSError:
            if target.exists():
                continue
            raise
        return target
