"""ONNX Runtime (via skl2onnx) beside the numpy k-NN kernel and scikit-learn, on iris-knn.

    .venv/bin/pip install skl2onnx onnxruntime   # not project dependencies; only for this check
    .venv/bin/python -m bench.onnx_knn

Prints how many rows' probabilities differ from scikit-learn's (the iris rows, random rows, and
integer grid rows full of ties) and the time of one call of 1 and of 64 rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_iris

from bench.run import WORK
from protoserve_models.builtin.build import build_models
from protoserve_models.repository import PROJECT_TRUSTED_TYPES, load_model_file

Proba = Callable[[np.ndarray], np.ndarray]


def best_call_us(f: Proba, x: np.ndarray, calls: int = 200, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            f(x)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def onnx_proba(estimator: object, sample: np.ndarray) -> Proba:
    import onnxruntime as ort  # type: ignore[import-not-found]
    from skl2onnx import to_onnx  # type: ignore[import-not-found]

    model = to_onnx(estimator, sample[:1], options={id(estimator): {"zipmap": False}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as one predict thread would
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(["probabilities"], {name: x})[0]


def main() -> None:
    repository = WORK / "models"
    build_models(repository, ["iris-knn"])
    model = load_model_file(repository / "iris-knn" / "1", PROJECT_TRUSTED_TYPES, fast_kernel=True)
    data = load_iris().data
    rng = np.random.default_rng(7)
    runtimes: dict[str, Proba] = {
        "scikit-learn": model.estimator.predict_proba,
        "numpy kernel": model._kernel,  # type: ignore[dict-item]  # the LoadedModel's own kernel
        "onnxruntime": onnx_proba(model.estimator, data),
    }
    sets = {"iris": data, "random": rng.uniform(3, 9, (2000, 4)), "grid": rng.integers(0, 9, (2000, 4)) * 1.0}
    print(f"{'runtime':<14}" + "".join(f"{k + ' diff':>13}" for k in sets) + f"{'1 row µs':>10}{'64 rows µs':>12}")
    for label, proba in runtimes.items():
        diffs = [int((proba(x) != model.estimator.predict_proba(x)).any(axis=1).sum()) for x in sets.values()]
        one, many = best_call_us(proba, data[:1]), best_call_us(proba, np.resize(data, (64, 4)))
        print(f"{label:<14}" + "".join(f"{d:>13}" for d in diffs) + f"{one:>10.0f}{many:>12.0f}")


if __name__ == "__main__":
    main()
