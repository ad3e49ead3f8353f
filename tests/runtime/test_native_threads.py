"""A service's native thread pools (OpenMP under scikit-learn, BLAS) are limited to
PROTOSERVE_MODEL_THREADS when it is set, unless the user set OMP_NUM_THREADS and friends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from protoserve_runtime.native_threads import THREAD_VARIABLES

PROBE = """
import json, sys
import sklearn.ensemble  # loads OpenMP before the limit, as a service's imports do
from threadpoolctl import threadpool_info
from protoserve_runtime.native_threads import limit_native_threads
limited = limit_native_threads(int(sys.argv[1]))
print(json.dumps({"limited": limited, "threads": sorted({p["num_threads"] for p in threadpool_info()}),
                  "apis": sorted({p["user_api"] for p in threadpool_info()})}))
"""


def probe(threads: int, **env: str) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    out = subprocess.run([sys.executable, "-c", PROBE, str(threads)], env={**base, **env}, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_loaded_pools_are_limited() -> None:
    result = probe(1)
    assert result["limited"] is True and result["threads"] == [1] and "openmp" in result["apis"]  # type: ignore[operator]


def test_the_users_own_setting_wins_and_zero_means_the_default() -> None:
    assert probe(1, OMP_NUM_THREADS="2")["limited"] is False
    assert probe(0)["limited"] is False
