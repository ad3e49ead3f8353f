"""scikit-learn's per-call overhead on the built-in models: one predict of 1 row vs of 64 rows,
and the same predict through the model's exact fast kernel where it has one (inference_svc/kernels.py).

    .venv/bin/python -m bench.sklearn_overhead

When a call of 64 rows costs about as much as a call of 1, the time is overhead (input checks,
dispatch), not arithmetic: that is what the dynamic batcher amortizes.
"""

from __future__ import annotations

import time

import numpy as np

from bench.run import WORK
from protoserve_models.builtin.build import build_models
from protoserve_models.model import LoadedModel
from protoserve_models.repository import PROJECT_TRUSTED_TYPES, load_model_file

MODELS = ["iris-knn", "regression-gp", "risk", "sentiment"]


def sample(model: LoadedModel, rows: int) -> np.ndarray:
    columns = model.card.reference_sample
    if model.card.is_text:
        return np.resize(np.array(columns[model.card.inputs[0].name], dtype=object), rows)
    matrix = np.array([columns[f] for f in model.card.feature_names], dtype=np.float64).T
    return np.resize(matrix, (rows, matrix.shape[1]))


def per_call_us(model: LoadedModel, inputs: np.ndarray, seconds: float = 1.0) -> float:
    model.predict(inputs)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.predict(inputs)
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    repository = WORK / "models"
    build_models(repository, MODELS)
    print(f"{'model':<14} {'kernel':<8} {'1 row µs':>10} {'64 rows µs':>11} {'µs/row at 64':>13}")
    for name in MODELS:
        for fast in (False, True):
            model = load_model_file(repository / name / "1", PROJECT_TRUSTED_TYPES, fast_kernel=fast)
            if fast and not model.fast:
                continue
            one, many = per_call_us(model, sample(model, 1)), per_call_us(model, sample(model, 64))
            kernel = "fast" if fast else "sklearn"
            print(f"{name:<14} {kernel:<8} {one:>10.0f} {many:>11.0f} {many / 64:>13.1f}")


if __name__ == "__main__":
    main()
