"""The hand-written peer: a Flask app serving a fitted scikit-learn classifier over Open Inference
Protocol REST, as a user would write it, run under gunicorn's sync workers.

    BENCH_MODEL_FILE=model.joblib gunicorn -w 2 -b 127.0.0.1:8080 --chdir bench flask_app:app

POST /v2/models/<name>/infer takes a v2 JSON body (the first input tensor, FP64 [rows, features])
and answers predict_proba as a v2 JSON response. It runs in its own venv (bench/.venv-flask), so
it imports nothing from the project.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ["BENCH_MODEL_FILE"])


@app.get("/v2/health/ready")
def ready() -> Response:
    return jsonify({"ready": True})


@app.post("/v2/models/<name>/infer")
def infer(name: str) -> Response | tuple[Response, int]:
    try:
        tensor = request.get_json(silent=True)["inputs"][0]
        rows = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return jsonify({"error": f"bad input tensor: {error}"}), 400
    probabilities = model.predict_proba(rows)
    return jsonify({
        "model_name": name,
        "outputs": [{
            "name": "predict_proba", "datatype": "FP64", "shape": list(probabilities.shape),
            "data": probabilities.ravel().tolist(),
        }],
    })
