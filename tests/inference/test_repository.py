"""The model repository loads skops files, refuses untrusted types, and picks versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin

from protoserve_models.card import CARD_FILE, MODEL_FILE, ModelCard
from protoserve_models.repository import ModelRepository, VersionState
from protoserve_runtime.errors import InvalidArgument, NotFound


class SneakyClassifier(ClassifierMixin, BaseEstimator):
    """A type no allow-list names: loading it would run code of the file's choosing."""

    def fit(self, x, y):
        self.classes_ = np.array(["a", "b"])
        return self


def copy_version(src_repo: Path, dst_repo: Path, name: str, version: str) -> Path:
    target = dst_repo / name / version
    shutil.copytree(src_repo / name / "1", target)
    card = (target / CARD_FILE).read_text().replace('"version": "1"', f'"version": "{version}"')
    (target / CARD_FILE).write_text(card)
    return target


def test_untrusted_type_is_refused_with_a_clear_error(tmp_path: Path, model_repository: Path) -> None:
    target = copy_version(model_repository, tmp_path, "iris-knn", "2")
    sio.dump(SneakyClassifier().fit(None, None), target / MODEL_FILE)
    repository = ModelRepository(tmp_path)
    entry = repository.load("iris-knn", "2")
    assert entry.state is VersionState.FAILED
    assert "not trusted" in entry.reason and "SneakyClassifier" in entry.reason
    assert entry.model is None


def test_highest_ready_version_answers_and_pins_work(tmp_path: Path, model_repository: Path) -> None:
    copy_version(model_repository, tmp_path, "iris-knn", "1")
    copy_version(model_repository, tmp_path, "iris-knn", "2")
    broken = copy_version(model_repository, tmp_path, "iris-knn", "3")
    (broken / MODEL_FILE).write_bytes(b"not a skops file")
    repository = ModelRepository(tmp_path)
    repository.load_all()
    states = {e.version: e.state for e in repository.versions("iris-knn")}
    assert states == {"1": VersionState.READY, "2": VersionState.READY, "3": VersionState.FAILED}
    assert repository.get("iris-knn").version == "2"  # 3 failed, so 2 is the highest ready
    assert repository.get("iris-knn", "1").version == "1"
    with pytest.raises(NotFound):
        repository.get("iris-knn", "9")
    with pytest.raises(InvalidArgument):
        repository.get("../iris-knn")


def test_card_must_match_its_directory(tmp_path: Path, model_repository: Path) -> None:
    target = tmp_path / "other-name" / "1"
    shutil.copytree(model_repository / "iris-knn" / "1", target)
    entry = ModelRepository(tmp_path).load("other-name", "1")
    assert entry.state is VersionState.FAILED and "card says iris-knn/1" in entry.reason


def test_card_round_trips(model_repository: Path) -> None:
    card = ModelCard.read(model_repository / "sentiment" / "1")
    assert ModelCard.from_dict(__import__("json").loads(card.to_json())) == card
    assert card.is_text and card.labels == ("negative", "neutral", "positive")
    assert len(card.reference_sample["text"]) == 200


def test_builds_are_deterministic(tmp_path: Path, model_repository: Path) -> None:
    from protoserve_models.builtin.build import build_models

    build_models(tmp_path, ["iris-knn", "risk"])
    for name in ("iris-knn", "risk"):
        assert (tmp_path / name / "1" / CARD_FILE).read_text() == (model_repository / name / "1" / CARD_FILE).read_text()
