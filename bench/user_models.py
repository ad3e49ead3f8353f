"""The benchmark's models: the built-in iris-knn, and models users bring, each fitted here
(deterministically, on the DataFrame as users fit them), saved as users save them and added to the
bench's repository with the real `protoserve models add` command. Every peer gets one joblib file
of the same fitted estimator.

- penguins-pipeline: palmerpenguins, a ColumnTransformer (imputed and scaled numbers, one-hot
  island and sex) + LogisticRegression, saved with joblib and added with --trust-pickle.
- cancer-trees: scikit-learn's breast cancer table (30 numeric columns), a
  HistGradientBoostingClassifier, saved with skops (the peers get it with joblib: their loaders
  read pickles only).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import skops.io as sio
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from protoserve_models.builtin.build import build_models
from protoserve_models.repository import PROJECT_TRUSTED_TYPES, load_model_file

BUILTIN = "iris-knn"
PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PENGUIN_CATEGORIES = ["island", "sex"]


@dataclass(frozen=True)
class Fitted:
    """A user's model as it reaches `protoserve models add`: the saved file, its sample, its target."""

    model_file: Path
    sample: Path
    target: str
    trust_pickle: bool


@dataclass(frozen=True)
class BenchModel:
    name: str
    features: Callable[[], pd.DataFrame]  # the rows requests are cut from (complete rows, model's columns)
    fit: Callable[[Path], Fitted] | None = None  # None: a built-in model

    @property
    def columns(self) -> bool:
        """Fitted on a DataFrame: requests carry one tensor (or one JSON field) per column."""
        return self.fit is not None

    def rows(self, count: int) -> pd.DataFrame:
        """`count` rows, cycling through the feature rows."""
        frame = self.features()
        return frame.iloc[np.arange(count) % len(frame)].reset_index(drop=True)

    def inputs(self, count: int) -> pd.DataFrame | np.ndarray:
        """`count` rows as the estimator was fitted: a DataFrame, or a float matrix."""
        frame = self.rows(count)
        return frame if self.columns else frame.to_numpy(np.float64)


@lru_cache(maxsize=1)
def iris_features() -> pd.DataFrame:
    data = load_iris()
    return pd.DataFrame(data.data, columns=data.feature_names)


@lru_cache(maxsize=1)
def penguins() -> pd.DataFrame:
    return load_penguins()[[*PENGUIN_NUMBERS, *PENGUIN_CATEGORIES, "species"]]


def penguin_features() -> pd.DataFrame:
    # Complete rows: a request's BYTES tensor has no null (the model was fitted with the missing values).
    return penguins().drop(columns="species").dropna().reset_index(drop=True)


@lru_cache(maxsize=1)
def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    return data.data.assign(diagnosis=data.target_names[data.target])


def cancer_features() -> pd.DataFrame:
    return cancer().drop(columns="diagnosis")


def fit_penguins(folder: Path) -> Fitted:
    frame = penguins()
    pipeline = make_pipeline(
        ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), PENGUIN_NUMBERS),
            ("categories", OneHotEncoder(handle_unknown="ignore"), PENGUIN_CATEGORIES),
        ]),
        LogisticRegression(max_iter=1000),
    )
    pipeline.fit(frame.drop(columns="species"), frame["species"])
    joblib.dump(pipeline, folder / "penguins-pipeline.joblib")
    frame.to_csv(folder / "penguins.csv", index=False)
    return Fitted(folder / "penguins-pipeline.joblib", folder / "penguins.csv", "species", trust_pickle=True)


def fit_cancer(folder: Path) -> Fitted:
    frame = cancer()
    model = HistGradientBoostingClassifier(random_state=0).fit(frame.drop(columns="diagnosis"), frame["diagnosis"])
    sio.dump(model, folder / "cancer-trees.skops")
    joblib.dump(model, folder / "cancer-trees.joblib")  # the same fitted object, for the peers
    frame.to_csv(folder / "cancer.csv", index=False)
    return Fitted(folder / "cancer-trees.skops", folder / "cancer.csv", "diagnosis", trust_pickle=False)


MODELS = {
    model.name: model
    for model in (
        BenchModel(BUILTIN, iris_features),
        BenchModel("penguins-pipeline", penguin_features, fit_penguins),
        BenchModel("cancer-trees", cancer_features, fit_cancer),
    )
}


def add(repository: Path, name: str, fitted: Fitted) -> None:
    """`protoserve models add` as a user runs it, into a fresh model directory (one version), unless
    that directory was added from the same bytes (the fits are deterministic)."""
    digest = hashlib.sha256(fitted.model_file.read_bytes()).hexdigest()
    source = repository / name / ".bench-source"
    if source.exists() and source.read_text() == digest and (repository / name / "1").is_dir():
        return
    shutil.rmtree(repository / name, ignore_errors=True)
    command = [str(Path(sys.executable).parent / "protoserve"), "models", "add", name, str(fitted.model_file),
               "--sample", str(fitted.sample), "--target", fitted.target, "--repository", str(repository)]
    if fitted.trust_pickle:
        command.append("--trust-pickle")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    source.write_text(digest)


def prepare(names: list[str], work: Path) -> dict[str, Path]:
    """The bench's repository (work/models) holding the named models, and each model's joblib file
    for the peers, by name."""
    repository = work / "models"
    files = work / "estimators"
    files.mkdir(parents=True, exist_ok=True)
    # Only the named models: protoserve serves every model of its repository, and its memory is compared.
    for stale in repository.glob("*/"):
        if stale.name not in names:
            shutil.rmtree(stale)
    peer_files = {}
    for name in names:
        model = MODELS[name]
        if model.fit is None:
            build_models(repository, [name])
            peer_files[name] = export_builtin(repository, name, files / f"{name}.joblib")
        else:
            fitted = model.fit(files)
            add(repository, name, fitted)
            peer_files[name] = fitted.model_file.with_suffix(".joblib")
    return peer_files


def export_builtin(repository: Path, name: str, path: Path) -> Path:
    """A built-in model's fitted estimator as a plain joblib file, for the peers' own loaders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(load_model_file(repository / name / "1", PROJECT_TRUSTED_TYPES).estimator, path)
    return path
