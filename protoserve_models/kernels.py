"""Exact fast kernels: numpy stand-ins for a scikit-learn call whose cost is mostly overhead.

One ``KNeighborsClassifier.predict_proba`` costs about 0.4 ms whether it gets 1 row or 64: input
validation, ``check_is_fitted`` and the dispatch of the neighbour search, not arithmetic. A kernel
computes the same outputs from the fitted attributes in a few numpy calls. It is used only where
it is exact (the parity tests compare it with scikit-learn, ties included); rows it cannot decide
exactly are handed to scikit-learn itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from protoserve_models.columns import numeric_matrix
from protoserve_models.linear_kernel import LinearPipelineKernel
from protoserve_models.tree_kernel import HistGradientBoostingKernel

ProbaKernel = Callable[[Any], np.ndarray]  # the model's inputs (an array, a DataFrame or checked columns) -> probabilities
# How far a kernel's probabilities may be from scikit-learn's: rounding of the same arithmetic
# in another order (the labels are the same: near-ties are answered by scikit-learn).
KERNEL_RTOL = 1e-12
KERNEL_ATOL = 1e-15

# Distances closer than this (relative to the rows' magnitudes) to the k-th neighbour's count as
# tied with it. It is far above the rounding of every way of computing a distance (direct sums or
# the |x|² - 2x·t + |t|² expansion, here and in scikit-learn's brute, KD- and ball-tree searches),
# so a neighbour set this kernel calls unambiguous is the one scikit-learn finds.
TIE_RTOL = 1e-9
# Rows per block, so that the rows × training points arrays stay small.
BLOCK_ROWS = 1024
# Rows up to which manhattan takes the rows × points × features differences in one array.
SMALL_BLOCK_ROWS = 64
_METRICS = ("euclidean", "manhattan")


class KNeighborsKernel:
    """``predict_proba`` of a fitted uniform-weight euclidean/manhattan KNeighborsClassifier by
    brute force. A row whose k nearest neighbours are not unique (a tie at the k-th distance among
    points of different classes) is answered by the estimator, so the output is always its own."""

    def __init__(self, estimator: KNeighborsClassifier) -> None:
        self._estimator = estimator
        self._train = np.ascontiguousarray(estimator._fit_X, dtype=np.float64)
        self._columns = np.ascontiguousarray(self._train.T)  # one contiguous row per feature
        self._train_squares = np.einsum("ij,ij->i", self._train, self._train)
        self._labels = np.asarray(estimator._y, dtype=np.intp)  # index into classes_
        self._n_classes = len(estimator.classes_)
        self._class_members = self._labels[:, None] == np.arange(self._n_classes)  # points × classes
        self._row_index = np.arange(BLOCK_ROWS)[:, None]
        self._k = int(estimator.n_neighbors)
        self._euclidean = estimator.effective_metric_ == "euclidean"
        # Magnitude of the training points, in the units of the distance compared below.
        self._train_scale = float(self._magnitude(self._train).max())

    @staticmethod
    def supports(estimator: Any) -> bool:
        return (
            isinstance(estimator, KNeighborsClassifier)
            and estimator.weights == "uniform"
            and getattr(estimator, "effective_metric_", None) in _METRICS
            and not getattr(estimator, "effective_metric_params_", None)
            and not getattr(estimator, "outputs_2d_", True)
            and getattr(estimator, "_fit_X", None) is not None
            and 0 < estimator.n_neighbors <= estimator.n_samples_fit_
        )

    def _magnitude(self, x: np.ndarray) -> np.ndarray:
        return np.square(x).sum(axis=1) if self._euclidean else np.abs(x).sum(axis=1)

    def __call__(self, inputs: Any) -> np.ndarray:
        inputs = numeric_matrix(inputs)  # no copy for the float matrix a model fitted on numpy gets
        if inputs.shape[0] == 1 and self._k < len(self._labels):
            return self._one_row(inputs)
        if inputs.shape[0] <= BLOCK_ROWS:
            return self._block(inputs)
        return np.concatenate([self._block(inputs[i:i + BLOCK_ROWS]) for i in range(0, inputs.shape[0], BLOCK_ROWS)])

    def _block(self, inputs: np.ndarray) -> np.ndarray:
        dist = self._distances(inputs)
        k, n, rows = self._k, dist.shape[1], inputs.shape[0]
        order = np.argpartition(dist, k - 1 if k == n else (k - 1, k), axis=1)
        nearest = self._labels[order[:, :k]]
        # Votes per (row, class) in one bincount: row r's labels are shifted into bins r·classes + c.
        shifted = nearest + self._row_index[:rows] * self._n_classes
        counts = np.bincount(shifted.ravel(), minlength=rows * self._n_classes).reshape(rows, self._n_classes)
        proba = counts / float(k)  # as scikit-learn: the sum of k unit weights, normalised
        if k < n:
            self._settle_ties(inputs, dist, order, proba)
        return proba

    def _one_row(self, inputs: np.ndarray) -> np.ndarray:
        """The commonest call, in the fewest numpy calls: the same decisions as a block's, with the
        row's k-th and (k+1)-th distances and the tie tolerance as Python floats."""
        k = self._k
        step = self._train - inputs
        dist = np.einsum("ij,ij->i", step, step) if self._euclidean else np.abs(step, out=step).sum(axis=1)
        order = np.argpartition(dist, (k - 1, k))
        kth, next_out = float(dist[order[k - 1]]), float(dist[order[k]])
        row = inputs[0]
        magnitude = float(row @ row) if self._euclidean else float(np.abs(row).sum())
        tol = TIE_RTOL * (magnitude + self._train_scale + kth)
        if next_out - kth <= tol:  # the k-th has an equal left out: it matters if the tied points' classes differ
            tied = np.abs(dist - kth) <= tol
            if np.count_nonzero(tied @ self._class_members) > 1:
                return self._estimator.predict_proba(inputs)
        counts = np.bincount(self._labels[order[:k]], minlength=self._n_classes)
        return (counts / float(k))[None, :]

    def _distances(self, inputs: np.ndarray) -> np.ndarray:
        """Rows × training points: squared euclidean (it orders points as the distance does) or
        manhattan. Euclidean takes |x|² - 2x·t + |t|² (one matrix product; its rounding is far
        below TIE_RTOL). Manhattan takes a small block's rows × points × features differences at
        once (fewest numpy calls) and sums a large one feature by feature (smaller arrays)."""
        if self._euclidean:
            dist = inputs @ self._columns
            dist *= -2.0
            dist += self._train_squares
            dist += np.einsum("ij,ij->i", inputs, inputs)[:, None]
            return dist
        if inputs.shape[0] <= SMALL_BLOCK_ROWS:
            step = inputs[:, None, :] - self._train
            return np.abs(step, out=step).sum(axis=2)
        dist = np.zeros((inputs.shape[0], self._columns.shape[1]))
        step = np.empty_like(dist)
        for column_index, column in enumerate(self._columns):
            np.subtract(inputs[:, column_index, None], column, out=step)
            dist += np.abs(step, out=step)
        return dist

    def _settle_ties(self, inputs: np.ndarray, dist: np.ndarray, order: np.ndarray, proba: np.ndarray) -> None:
        # The k-th and (k+1)-th distances of each row (argpartition put them at k - 1 and k).
        kth, next_out = dist[self._row_index[: len(dist)], order[:, self._k - 1 : self._k + 1]].T
        tol = TIE_RTOL * (self._magnitude(inputs) + self._train_scale + kth)
        spill = np.flatnonzero(next_out - kth <= tol)  # the k-th has an equal left out
        if not spill.size:
            return
        if spill.size < len(kth):
            dist, kth, tol = dist[spill], kth[spill], tol[spill]
        # Which of the tied points count changes the answer only if they are of different classes:
        # a boolean product gives, per row, the classes present among its tied points.
        tied = np.abs(dist - kth[:, None]) <= tol[:, None]
        ambiguous = spill[(tied @ self._class_members).sum(axis=1) > 1]
        if ambiguous.size:
            proba[ambiguous] = self._estimator.predict_proba(inputs[ambiguous])


def proba_kernel(estimator: Any) -> ProbaKernel | None:
    """An exact fast ``predict_proba`` for this fitted estimator, or None when there is none."""
    if KNeighborsKernel.supports(estimator):
        return KNeighborsKernel(estimator)
    return LinearPipelineKernel.compile(estimator) or HistGradientBoostingKernel.compile(estimator)
