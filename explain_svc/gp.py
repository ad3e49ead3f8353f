"""The predicted mean of a Gaussian process with an RBF kernel, without predict's overheads.

Exact SHAP asks the model for 2^features x background rows per explanation (1,600 for
``regression-gp``). GaussianProcessRegressor.predict makes its kernel matrix through the kernel
objects: a full matrix of the constant, a matrix of zeros for the WhiteKernel (which adds nothing
between distinct points: predict never compares a row with itself), their sum and product, each
rows x training points, then K @ alpha. Here the constant is folded into alpha and the white
noise is left out, so the matrix is made once: exp(-d^2 / 2) of the scaled distances. The result
is predict's to rounding (about 1e-12 of the output); ExactMethod checks that before it uses it.
Other kernels and models get None: the explainer then calls the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, Product, Sum, WhiteKernel
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Mean = Callable[[np.ndarray], np.ndarray]


def _without_white(kernel: Kernel) -> Kernel | None:
    """The kernel less its WhiteKernel terms (None when nothing else is left)."""
    if isinstance(kernel, WhiteKernel):
        return None
    if isinstance(kernel, Sum):
        left, right = _without_white(kernel.k1), _without_white(kernel.k2)
        if left is None or right is None:
            return left if right is None else right
        return Sum(left, right)
    return kernel


def _scaled_rbf(kernel: Kernel | None) -> tuple[float, RBF] | None:
    """(c, rbf) when the kernel is c * rbf, rbf * c or rbf; None otherwise (Matern is an RBF
    subclass with another formula, hence the exact type)."""
    if type(kernel) is RBF:
        return 1.0, kernel
    if isinstance(kernel, Product):
        for constant, rbf in ((kernel.k1, kernel.k2), (kernel.k2, kernel.k1)):
            if isinstance(constant, ConstantKernel) and type(rbf) is RBF:
                return float(constant.constant_value), rbf
    return None


def _steps(estimator: Any) -> tuple[StandardScaler | None, Any]:
    if isinstance(estimator, Pipeline) and len(estimator.steps) == 2 and isinstance(estimator.steps[0][1], StandardScaler):
        return estimator.steps[0][1], estimator.steps[1][1]
    return None, estimator


def gp_mean(estimator: Any) -> Mean | None:
    """A function of raw rows giving the estimator's predict for [StandardScaler,] a fitted
    single-target GaussianProcessRegressor with kernel [c *] RBF [+ WhiteKernel]; else None."""
    scaler, gp = _steps(estimator)
    if not (isinstance(gp, GaussianProcessRegressor) and hasattr(gp, "X_train_") and np.ndim(gp.alpha_) == 1):
        return None
    parts = _scaled_rbf(_without_white(gp.kernel_))
    if parts is None:
        return None
    constant, rbf = parts
    length = np.broadcast_to(np.asarray(rbf.length_scale, dtype=np.float64), (gp.X_train_.shape[1],))
    train = np.asarray(gp.X_train_, dtype=np.float64) / length  # (points, features)
    weights = constant * np.asarray(gp.alpha_, dtype=np.float64)
    y_std, y_mean = float(np.squeeze(gp._y_train_std)), float(np.squeeze(gp._y_train_mean))

    def mean(rows: np.ndarray) -> np.ndarray:
        z = np.asarray(scaler.transform(rows) if scaler is not None else rows, dtype=np.float64) / length
        kernel = np.exp(-0.5 * cdist(z, train, metric="sqeuclidean"))
        return np.asarray(y_std * np.dot(kernel, weights) + y_mean)

    return mean
