"""The BentoML peer: one fitted scikit-learn classifier behind BentoML 1.4's service API, with its
adaptive batching, as its documentation shows it.

    BENCH_MODEL_FILE=model.joblib BENCH_WORKERS=1 bentoml serve bentoml_service:Classifier --port 3000

POST /predict takes {"rows": [...]} and answers predict_proba as a list of rows. Requests that
arrive together are batched along the rows (their lists concatenated, up to 1,024 rows, as
protoserve's 64 one-row requests or 32 of 32 rows). A model fitted on a DataFrame gets
`pd.DataFrame(rows)` (rows as records); any other gets the rows as a float matrix. It runs in its
own venv (bench/.venv-bentoml), so it imports nothing from the project.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd


# No access log: the other servers write no line per request either.
@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")), logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_FILE"])
        self.takes_frame = hasattr(self.model, "feature_names_in_")

    @bentoml.api(batchable=True, max_batch_size=1024)
    def predict(self, rows: list[Any]) -> np.ndarray:
        inputs = pd.DataFrame(rows) if self.takes_frame else np.asarray(rows, dtype=np.float64)
        return self.model.predict_proba(inputs)
