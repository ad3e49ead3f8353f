"""How many threads the native libraries under scikit-learn (OpenMP, OpenBLAS, MKL) may use.

A service that runs a worker process per core gains nothing from a model call that starts a thread
per core too: on a busy server the threads of every worker fight over the same cores. A
HistGradientBoostingClassifier's predict_proba of one row took 28 ms with OpenMP's default threads
and 3 ms with one, beside a second worker, on a 2-core machine (bench/run.py, cancer-trees).
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
