"""A loaded model version: the estimator behind one uniform ``predict`` on validated inputs."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, ModelInputs, ServedInputs, check_rows, model_input
from protoserve_models.kernels import KERNEL_ATOL, KERNEL_RTOL, ProbaKernel, proba_kernel
from protoserve_runtime.errors import FailedPrecondition, ProtoserveError

log = logging.getLogger(__name__)


class ModelError(FailedPrecondition):
    """The model failed on inputs that passed its card's checks (FAILED_PRECONDITION): the model,
    not the request, is at fault; the message names the model, the version and the reason."""


@dataclass(frozen=True)
class PredictionBatch:
    """The outputs for n rows, by task:

    - classification: label_indices (n, into the card's labels); probabilities (n × labels, card
      order) when the card says probabilities, else scores from decision_function when it has one
      (n × labels in card order, or n for a binary classifier: positive favours the second label);
    - regression: values (n, or n × outputs for several named outputs) and variances of the same
      shape (zeros when the model gives none);
    - anomaly_detection: label_indices (0 inlier, 1 outlier) and scores (decision_function:
      negative for outliers);
    - clustering: label_indices (the cluster id).
    """

    probabilities: np.ndarray | None = None
    label_indices: np.ndarray | None = None
    values: np.ndarray | None = None
    variances: np.ndarray | None = None
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        for arr in (self.probabilities, self.label_indices, self.values):
            if arr is not None:
                return int(arr.shape[0])
        return 0

    def take(self, start: int, stop: int) -> PredictionBatch:
        """The outputs of rows start..stop, for splitting a batch back to its callers."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop]

        return PredictionBatch(
            probabilities=cut(self.probabilities),
            label_indices=cut(self.label_indices),
            values=cut(self.values),
            variances=cut(self.variances),
            scores=cut(self.scores),
        )


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


class LoadedModel:
    """One model version in memory. Inputs are already validated against the card and shaped as
    the model was fitted, or a DataFrame model's checked columns (protoserve_models.inputs)."""

    def __init__(self, card: ModelCard, estimator: Any, fast_kernel: bool = False) -> None:
        self.card = card
        self.estimator = estimator
        # An exact numpy stand-in for the estimator's predict_proba (see kernels.py), when asked for.
        self._kernel: ProbaKernel | None = None
        self._label_order: np.ndarray | None = None  # None: the card's order is the estimator's
        self._label_index: dict[str, int] = {}  # a predicted class (as text) → its index in the card's labels
        self._returns_std = False
        if card.task == "classification":
            classes = [str(c) for c in getattr(estimator, "classes_", [])]
            if sorted(classes) != sorted(card.labels):
                raise ValueError(
                    f"the estimator's classes {classes} differ from the card's labels "
                    f"{list(card.labels)}"
                )
            # Column permutation from the estimator's class order to the card's label order.
            order = np.array([classes.index(label) for label in card.labels])
            self._label_order = None if (order == np.arange(len(order))).all() else order
            self._label_index = {label: i for i, label in enumerate(card.labels)}
            if fast_kernel and card.probabilities:
                self._kernel = _checked_kernel(card, estimator)
        if card.task == "regression" and not card.outputs:
            final = _final_step(estimator)
            self._returns_std = "return_std" in inspect.signature(final.predict).parameters

    @property
    def fast(self) -> bool:
        """Whether predictions come from a fast kernel (cheap enough to run on the event loop)."""
        return self._kernel is not None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def predict(self, inputs: ServedInputs) -> PredictionBatch:
        """The outputs for validated inputs; a failure of the model itself is a ModelError."""
        try:
            return self._predict(inputs)
        except ProtoserveError:
            raise
        except Exception as exc:  # the estimator's own failure, whatever its type
            raise ModelError(
                f"model {self.name!r} version {self.version} failed to predict: {type(exc).__name__}: {exc}"
            ) from exc

    def _predict(self, served: ServedInputs) -> PredictionBatch:
        task = self.card.task
        if self._kernel is not None:  # it reads checked columns itself: no DataFrame is built
            return self.classification(self._kernel(served))
        inputs = model_input(served)
        if task == "classification":
            if self.card.probabilities:
                return self.classification(self.estimator.predict_proba(inputs))
            return PredictionBatch(label_indices=self._card_indices(self.estimator.predict(inputs)), scores=self._scores(inputs))
        if task == "anomaly_detection":  # predict: +1 inlier, -1 outlier
            flags = np.asarray(self.estimator.predict(inputs))
            return PredictionBatch(label_indices=(flags == -1).astype(np.intp), scores=self._scores(inputs))
        if task == "clustering":
            return PredictionBatch(label_indices=np.asarray(self.estimator.predict(inputs), dtype=np.intp).reshape(-1))
        return self._regression(inputs)

    def _regression(self, inputs: ModelInputs) -> PredictionBatch:
        if self._returns_std:
            mean, std = self.estimator.predict(inputs, return_std=True)
            mean_values = np.asarray(mean, dtype=np.float64).reshape(-1)
            return PredictionBatch(values=mean_values, variances=np.square(np.asarray(std, dtype=np.float64)).reshape(-1))
        predicted = np.asarray(self.estimator.predict(inputs), dtype=np.float64)
        values: np.ndarray = predicted.reshape(len(predicted), -1) if self.card.outputs else predicted.reshape(-1)
        return PredictionBatch(values=values, variances=np.zeros_like(values))

    def _card_indices(self, predicted: Any) -> np.ndarray:
        """Predicted classes as indices into the card's labels."""
        index = self._label_index
        return np.array([index[str(c)] for c in np.asarray(predicted).reshape(-1).tolist()], dtype=np.intp)

    def _scores(self, inputs: ModelInputs) -> np.ndarray | None:
        if not self.card.decision_scores:
            return None
        scores = np.asarray(self.estimator.decision_function(inputs), dtype=np.float64)
        if scores.ndim == 2 and self._label_order is not None:
            scores = scores[:, self._label_order]
        return scores

    def classification(self, estimator_probabilities: Any) -> PredictionBatch:
        """The batch for probabilities in the estimator's class order (as predict_proba gives them)."""
        probabilities = np.asarray(estimator_probabilities, dtype=np.float64)
        if self._label_order is not None:
            probabilities = probabilities[:, self._label_order]
        return PredictionBatch(probabilities=probabilities, label_indices=probabilities.argmax(axis=1))


def _checked_kernel(card: ModelCard, estimator: Any) -> ProbaKernel | None:
    """The estimator's fast kernel, if it has one that agrees with it on the card's reference rows
    (a guard at load; the parity tests are the real check)."""
    kernel = proba_kernel(estimator)
    if kernel is None or card.is_text or not card.reference_sample:
        return kernel
    columns = [card.reference_sample.get(f, []) for f in card.feature_names]
    rows = [dict(zip(card.feature_names, values)) for values in zip(*columns)]
    try:
        sample = check_rows(card, rows, InputLimits(max_rows=max(len(rows), 1), max_text_length=10**9))
        fast, reference = kernel(sample), np.asarray(estimator.predict_proba(model_input(sample)))
    except Exception:  # a sample the model cannot answer fails the load's own check, with its reason
        return kernel
    if fast.shape != reference.shape or not np.allclose(fast, reference, rtol=KERNEL_RTOL, atol=KERNEL_ATOL) or not (
        np.array_equal(fast.argmax(axis=1), reference.argmax(axis=1))
    ):
        log.warning("fast kernel disagrees with the estimator; serving with scikit-learn", extra={"model": card.name})
        return None
    return kernel
