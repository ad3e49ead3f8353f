"""An exact fast ``predict_proba`` for a fitted HistGradientBoostingClassifier on numeric columns.

scikit-learn's own call costs about a millisecond whatever the rows (validation of the DataFrame,
dispatch), and on a busy machine much more: the trees are walked on OpenMP threads that spin while
they wait for work. The kernel is compiled from the fitted trees (every node's feature, threshold,
missing-value direction and children, each tree's leaf values) into flat arrays, and walks every
(row, tree) pair at once, one tree level per step of a few numpy calls, on the caller's thread,
dropping the pairs that reached their leaf.

It is exact: each split is the same comparison on the same float64 value (``value <= threshold``,
NaN to the side the node learned), the leaf values are added to the baseline one tree at a time in
scikit-learn's order (a cumulative sum, not a pairwise one), and the probabilities come from the
estimator's own loss, so the outputs equal scikit-learn's to the last bit (the parity tests check
it). A model with categorical splits (its categories are ordinal-encoded before the trees) is not
compiled: scikit-learn serves it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from protoserve_models.columns import numeric_matrix


class HistGradientBoostingKernel:
    def __init__(self, estimator: HistGradientBoostingClassifier) -> None:
        trees = [predictor.nodes for iteration in estimator._predictors for predictor in iteration]
        sizes = np.array([len(nodes) for nodes in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate(trees)
        own = np.arange(len(nodes))
        shift = np.repeat(offsets, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        # children[2i] is node i's left child, children[2i + 1] its right one (a leaf: itself).
        children = np.empty(2 * len(nodes), dtype=np.intp)
        children[0::2] = np.where(leaf, own, nodes["left"].astype(np.intp) + shift)
        children[1::2] = np.where(leaf, own, nodes["right"].astype(np.intp) + shift)
        self._children = children
        self._leaf = leaf
        self._feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self._threshold = nodes["num_threshold"].astype(np.float64)
        self._missing_left = nodes["missing_go_to_left"].astype(bool)
        self._value = nodes["value"].astype(np.float64)
        self._roots = offsets.astype(np.intp)
        self._levels = int(nodes["depth"].max())
        self._width = int(estimator.n_features_in_)
        self._per_iteration = int(estimator.n_trees_per_iteration_)
        self._baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
        self._loss = estimator._loss

    @staticmethod
    def compile(estimator: Any) -> HistGradientBoostingKernel | None:
        if type(estimator) is not HistGradientBoostingClassifier or not getattr(estimator, "_predictors", None):
            return None
        if getattr(estimator, "_preprocessor", None) is not None or getattr(estimator, "is_categorical_", None) is not None:
            return None  # categorical features: encoded before the trees, split on bitsets
        if any(p.nodes["is_categorical"].any() for iteration in estimator._predictors for p in iteration):
            return None
        return HistGradientBoostingKernel(estimator)

    def __call__(self, inputs: Any) -> np.ndarray:
        x = np.ascontiguousarray(numeric_matrix(inputs))
        return np.asarray(self._loss.predict_proba(self.raw_predictions(x)))

    def raw_predictions(self, x: np.ndarray) -> np.ndarray:
        """Rows × trees per iteration: the baseline plus every tree's leaf value, in scikit-learn's order."""
        rows, trees = x.shape[0], len(self._roots)
        flat = x.reshape(-1)
        at = np.tile(self._roots, rows)  # (row, tree) pairs, row-major
        # Only the pairs still above a leaf are walked on: most trees end well above the deepest leaf.
        live = np.arange(rows * trees)
        nodes = at
        row_start = np.repeat(np.arange(rows, dtype=np.intp) * self._width, trees)
        missing = bool(np.isnan(flat).any())
        for _ in range(self._levels):
            value = flat[row_start + self._feature[nodes]]
            go_right = ~(value <= self._threshold[nodes])  # NaN compares false: right, unless it learned left
            if missing:
                go_right &= ~(np.isnan(value) & self._missing_left[nodes])
            nodes = self._children[2 * nodes + go_right]
            at[live] = nodes
            walking = ~self._leaf[nodes]
            if not walking.any():
                break
            live, nodes, row_start = live[walking], nodes[walking], row_start[walking]
        leaves = self._value[at].reshape(rows, trees)  # iteration-major within a row
        raw = np.empty((rows, self._per_iteration))
        for k in range(self._per_iteration):
            terms = np.column_stack([np.broadcast_to(self._baseline[k], rows), leaves[:, k::self._per_iteration]])
            raw[:, k] = np.cumsum(terms, axis=1)[:, -1]  # sequential, as scikit-learn adds tree by tree
        return raw
