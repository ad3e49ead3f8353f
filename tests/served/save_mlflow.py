"""A user's training script that saves its model with MLflow: `python -m tests.served.save_mlflow DIR FORMAT`.

It runs in its own process, as a notebook would; a joblib copy beside the MLflow directory lets the
tests compare the served answers with the estimator's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main(directory: Path, serialization: str) -> None:
    iris = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1_000).fit(iris.data, iris.target)
    mlflow.sklearn.save_model(model, str(directory), serialization_format=serialization,
                              signature=infer_signature(iris.data, model.predict(iris.data)),
                              input_example=iris.data.iloc[::3])
    joblib.dump(model, directory.with_suffix(".joblib"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
