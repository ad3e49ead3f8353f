"""Sentence-level features from VADER's human-rated sentiment lexicon (MIT, vaderSentiment).

The lexicon carries what a small corpus cannot: the polarity of words it never saw, negation,
intensifiers, emoticons and slang. The learned word weights sit beside these features.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

LEXICON_FEATURES = ("vader_negative", "vader_neutral", "vader_positive", "vader_compound")


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    # Built once per process, never saved with the model: the saved state stays plain data.
    return SentimentIntensityAnalyzer()


def lexicon_scores(text: str) -> tuple[float, float, float, float]:
    """VADER's negative, neutral, positive and compound scores of one text."""
    scores = _analyzer().polarity_scores(text)
    return scores["neg"], scores["neu"], scores["pos"], scores["compound"]


class VaderLexiconFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Turns each text into its four VADER lexicon scores."""

    def fit(self, texts: Any, y: Any = None) -> VaderLexiconFeatures:
        return self

    def transform(self, texts: Any) -> np.ndarray:
        return np.array([lexicon_scores(str(t)) for t in texts], dtype=np.float64).reshape(-1, 4)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(LEXICON_FEATURES, dtype=object)
