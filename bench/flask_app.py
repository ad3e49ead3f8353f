"""The hand-written peer: a Flask app serving fitted scikit-learn classifiers as a user would write
it, run under gunicorn's sync workers.

    BENCH_MODEL_DIR=dir-of-joblib-files gunicorn -w 2 -b 127.0.0.1:8080 --chdir bench flask_app:app

Every `<name>.joblib` in BENCH_MODEL_DIR is served at POST /models/<name>/predict, which takes
{"rows": [...]} and answers {"probabilities": [[...], ...]} from predict_proba. A model fitted on a
DataFrame gets `pd.DataFrame(rows)` built per request (rows as records); any other gets the rows
as a float matrix. It runs in its own venv (bench/.venv-flask), so it imports nothing from the project.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
models = {path.stem: joblib.load(path) for path in Path(os.environ["BENCH_MODEL_DIR"]).glob("*.joblib")}


@app.get("/v2/health/ready")
def ready() -> Response:
    return jsonify({"ready": True})


@app.post("/models/<name>/predict")
def predict(name: str) -> Response | tuple[Response, int]:
    model = models.get(name)
    if model is None:
        return jsonify({"error": f"no model {name!r}"}), 404
    try:
        rows = request.get_json(silent=True)["rows"]
        inputs = pd.DataFrame(rows) if hasattr(model, "feature_names_in_") else np.asarray(rows, dtype=np.float64)
        probabilities = model.predict_proba(inputs)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return jsonify({"error": f"bad rows: {error}"}), 400
    return jsonify({"probabilities": probabilities.tolist()})
