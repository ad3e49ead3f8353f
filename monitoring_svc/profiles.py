"""Reference profiles: the bins, vocabulary and reference counts drawn from a model card's
reference sample, and the model cards themselves, read from the model repository."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from protoserve_models.card import CardError, ModelCard
from protoserve_models.repository import MODEL_NAME_PATTERN, VERSION_PATTERN

log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "text"]
QUANTILE_BINS = 20  # reference quantiles that cut numbers (and text lengths) into bins
RETRY_SECONDS = 30.0  # a card that is missing is looked for again after this long
TOKEN = re.compile(r"[a-z0-9']+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _quantile_edges(values: np.ndarray) -> np.ndarray:
    """Inner bin edges: the distinct reference quantiles (ties collapse, so discrete data gets fewer bins)."""
    if values.size == 0:
        return np.zeros(0)
    qs = np.quantile(values, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
    return np.unique(qs)


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 below the first edge, len(edges) at or above the last."""
    return np.searchsorted(edges, values, side="right")


def bin_labels(edges: np.ndarray) -> list[str]:
    cuts = [f"{e:.4g}" for e in edges]
    if not cuts:
        return ["all"]
    return [f"< {cuts[0]}", *(f"[{a}, {b})" for a, b in zip(cuts, cuts[1:])), f">= {cuts[-1]}"]


@dataclass(frozen=True)
class FeatureProfile:
    name: str
    kind: Kind
    edges: np.ndarray  # numbers: value edges; text: length edges
    reference_counts: np.ndarray
    categories: tuple[str, ...] = ()
    vocabulary: frozenset[str] = frozenset()
    reference_oov_rate: float = 0.0  # text: OOV rate of half the sample against the other half's words

    @property
    def bins(self) -> int:
        return len(self.categories) + 1 if self.kind == "categorical" else len(self.edges) + 1

    def labels(self) -> list[str]:
        return [*self.categories, "(other)"] if self.kind == "categorical" else bin_labels(self.edges)


def _numeric_profile(name: str, values: list[object]) -> FeatureProfile:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    edges = _quantile_edges(array)
    counts = np.bincount(bin_index(edges, array), minlength=len(edges) + 1)
    return FeatureProfile(name, "numeric", edges, counts)


MISSING = "(missing)"  # the category of a missing value


def category_of(value: object) -> str:
    return MISSING if value is None or (isinstance(value, float) and value != value) else str(value)


def _categorical_profile(name: str, values: list[object]) -> FeatureProfile:
    categories = tuple(sorted({category_of(v) for v in values}))
    index = {c: i for i, c in enumerate(categories)}
    counts = np.bincount([index[category_of(v)] for v in values], minlength=len(categories) + 1)
    return FeatureProfile(name, "categorical", np.zeros(0), counts, categories=categories)


def feature_bin_index(profile: FeatureProfile, values: list[object]) -> np.ndarray:
    """The bin of each live value of a tabular feature: numbers by the reference's edges (-1 for a
    missing number, which no bin counts), categories by their index (unseen ones: "(other)")."""
    if profile.kind == "categorical":
        index = {c: i for i, c in enumerate(profile.categories)}
        other = len(profile.categories)
        return np.array([index.get(category_of(v), other) for v in values], dtype=np.int64)
    numbers = np.array([np.nan if v is None or isinstance(v, str) else float(v) for v in values], dtype=np.float64)  # type: ignore[arg-type]
    return np.where(np.isfinite(numbers), bin_index(profile.edges, numbers), -1)


def _text_profile(name: str, values: list[object]) -> FeatureProfile:
    texts = [str(v) for v in values]
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    edges = _quantile_edges(lengths)
    counts = np.bincount(bin_index(edges, lengths), minlength=len(edges) + 1)
    vocabulary = frozenset(w for t in texts for w in tokens(t))
    # Unseen text always has some words the sample lacks; measure how many on held-out halves.
    half = frozenset(w for t in texts[::2] for w in tokens(t))
    held_out = [w for t in texts[1::2] for w in tokens(t)]
    rate = sum(w not in half for w in held_out) / len(held_out) if held_out else 0.0
    return FeatureProfile(name, "text", edges, counts, vocabulary=vocabulary, reference_oov_rate=rate)


@dataclass(frozen=True)
class ModelProfile:
    card: ModelCard
    features: tuple[FeatureProfile, ...]
    feature_index: dict[str, int] = field(default_factory=dict)

    @property
    def reference_count(self) -> int:
        sample = self.card.reference_sample
        return len(next(iter(sample.values()))) if sample else 0


def build_profile(card: ModelCard) -> ModelProfile:
    features = []
    for feature in card.inputs:
        values = list(card.reference_sample.get(feature.name, []))
        if feature.type in ("double", "integer"):
            features.append(_numeric_profile(feature.name, [np.nan if v is None else v for v in values]))
        elif card.is_text:
            features.append(_text_profile(feature.name, values))
        else:
            features.append(_categorical_profile(feature.name, values))
    return ModelProfile(card, tuple(features), {f.name: i for i, f in enumerate(features)})


class ProfileStore:
    """Profiles of the model versions in the repository, built once per version on first use."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self._profiles: dict[tuple[str, str], ModelProfile] = {}
        self._missing: dict[tuple[str, str], float] = {}  # when a card was last looked for in vain

    def get(self, model: str, version: str) -> ModelProfile | None:
        key = (model, version)
        profile = self._profiles.get(key)
        if profile is None and time.monotonic() - self._missing.get(key, -RETRY_SECONDS) >= RETRY_SECONDS:
            profile = self._load(model, version)
            if profile is None:
                self._missing[key] = time.monotonic()
            else:
                self._profiles[key] = profile
        return profile

    def _load(self, model: str, version: str) -> ModelProfile | None:
        if not MODEL_NAME_PATTERN.match(model) or not VERSION_PATTERN.match(version):
            return None  # no such model can be on disk, and the name must not reach a path
        directory = self.repository / model / version
        try:
            return build_profile(ModelCard.read(directory))
        except CardError as exc:
            log.warning("no model card for monitoring", extra={"model": model, "version": version, "error": str(exc)})
            return None
