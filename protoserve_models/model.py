"""A loaded model version: the estimator behind one uniform ``predict`` on validated inputs."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from protoserve_models.card import ModelCard
from protoserve_models.kernels import ProbaKernel, proba_kernel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionBatch:
    """The outputs for n rows. Classifiers fill probabilities (n × labels, card order) and
    label_indices; regressors fill values and variances (zeros when the model gives none)."""

    probabilities: np.ndarray | None = None
    label_indices: np.ndarray | None = None
    values: np.ndarray | None = None
    variances: np.ndarray | None = None

    def __len__(self) -> int:
        arr = self.probabilities if self.probabilities is not None else self.values
        return 0 if arr is None else int(arr.shape[0])

    def take(self, start: int, stop: int) -> PredictionBatch:
        """The outputs of rows start..stop, for splitting a batch back to its callers."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop]

        return PredictionBatch(
            cut(self.probabilities), cut(self.label_indices), cut(self.values), cut(self.variances)
        )


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


class LoadedModel:
    """One model version in memory. Inputs are already validated against the card:
    a float64 matrix (rows × features) or, for text models, a 1-D object array of strings."""

    def __init__(self, card: ModelCard, estimator: Any, fast_kernel: bool = False) -> None:
        self.card = card
        self.estimator = estimator
        # An exact numpy stand-in for the estimator's predict_proba (see kernels.py), when asked for.
        self._kernel: ProbaKernel | None = None
        self._label_order: np.ndarray | None = None  # None: the card's order is the estimator's
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
            if fast_kernel:
                self._kernel = _checked_kernel(card, estimator)
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

    def predict(self, inputs: np.ndarray) -> PredictionBatch:
        if self.card.task == "classification":
            proba = self._kernel or self.estimator.predict_proba
            return self.classification(proba(inputs))
        if self._returns_std:
            mean, std = self.estimator.predict(inputs, return_std=True)
            variances = np.square(np.asarray(std, dtype=np.float64))
        else:
            mean = self.estimator.predict(inputs)
            variances = np.zeros(len(mean))
        return PredictionBatch(values=np.asarray(mean, dtype=np.float64).reshape(-1), variances=variances)

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
    try:
        sample = np.array([card.reference_sample[f] for f in card.feature_names], dtype=np.float64).T
    except (KeyError, ValueError):
        return kernel
    if not np.array_equal(kernel(sample), estimator.predict_proba(sample)):
        log.warning("fast kernel disagrees with the estimator; serving with scikit-learn", extra={"model": card.name})
        return None
    return kernel
