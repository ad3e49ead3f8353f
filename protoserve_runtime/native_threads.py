"""How many threads the native libraries under scikit-learn (OpenMP, OpenBLAS, MKL) may use.

A service that runs a worker process per core may not want a model call that starts a thread per
core too: the threads of every worker then share the same cores. It depends on the model and the
load, so the libraries' default stays unless PROTOSERVE_MODEL_THREADS says: measured on the 2-core
machine (bench/run.py, cancer-trees, a HistGradientBoostingClassifier), one thread made one-row calls
at concurrency 1 faster (p50 10.1 against 12.1 ms) but most batched points at concurrency 64 slower
(146 against 341 requests/s of one row), where the batcher hands the model many rows at a time.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads(threads: int) -> bool:
    """Limit this process and the workers it starts afterwards to ``threads`` native threads; nothing
    when threads is 0 or the user set one of the variables. True when the limit was set."""
    if threads <= 0 or any(name in os.environ for name in THREAD_VARIABLES):
        return False
    for name in THREAD_VARIABLES:  # read by each library as it starts in a new (spawned) worker
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits  # the libraries this process has loaded already

    threadpool_limits(limits=threads)
    return True
