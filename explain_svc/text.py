"""Linear SHAP for text models: a linear model over word n-grams (TF-IDF or counts), maybe beside
derived features such as the VADER lexicon scores, explained per token of the input.

The background is the empty text, so the base value is the model's output for "" and an n-gram
that is not in the text contributes nothing. Each n-gram's contribution is split evenly over its
occurrences and, within one occurrence, evenly over its words; so a token's attribution is the
sum of its share of every n-gram it is part of. Features derived from the whole text (the lexicon
block of ``sentiment``) are reported as entries of their own, one per derived feature, because
they are not a sum over words.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import shap
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC, LinearSVR
from sklearn.utils.extmath import safe_sparse_dot, softmax

from explain_svc.attributions import Attribution, Method, Outputs, RowAttributions
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_runtime.errors import FailedPrecondition

UNMATCHED = "(other n-grams)"
LINEAR_SVMS = (LinearSVC, LinearSVR)  # linear models outside sklearn.linear_model


@dataclass(frozen=True)
class Block:
    """A run of columns of the linear model's input: n-grams of one vectorizer, or derived features."""

    start: int
    names: list[str]  # n-gram per column (vectorizer) or derived feature name
    vectorizer: CountVectorizer | None  # TfidfVectorizer is a CountVectorizer


def _word_vectorizer(transformer: Any) -> CountVectorizer | None:
    if isinstance(transformer, CountVectorizer) and transformer.analyzer == "word" and transformer.tokenizer is None:
        return transformer
    return None


def _blocks(features: Any) -> list[Block]:
    """The column blocks of a text feature step; FailedPrecondition when it is not one we can read."""
    parts = [t for _, t in features.transformer_list if t != "drop"] if isinstance(features, FeatureUnion) else [features]
    blocks, start = [], 0
    for transformer in parts:
        names = [str(n) for n in transformer.get_feature_names_out()]
        vectorizer = _word_vectorizer(transformer)
        if vectorizer is not None:
            vocabulary = vectorizer.vocabulary_
            names = [""] * len(vocabulary)
            for gram, column in vocabulary.items():
                names[column] = gram
        blocks.append(Block(start, names, vectorizer))
        start += len(names)
    if not any(b.vectorizer is not None for b in blocks):
        raise FailedPrecondition("the text model has no word n-gram vectorizer to attribute tokens to")
    return blocks


def text_linear_parts(estimator: Any) -> tuple[Any, Any, list[Block]]:
    """(feature step, linear model, column blocks) of Pipeline([features, linear model]); a linear
    support vector machine is a linear model too (its decision function is the margin)."""
    if not (isinstance(estimator, Pipeline) and len(estimator.steps) == 2):
        raise FailedPrecondition("only a Pipeline of text features and a linear model can be explained for text")
    features, linear = estimator.steps[0][1], estimator.steps[1][1]
    if not (isinstance(linear, LINEAR_SVMS) or type(linear).__module__.startswith("sklearn.linear_model")) \
            or not hasattr(linear, "coef_"):
        raise FailedPrecondition(f"the text model's last step {type(linear).__name__} is not a linear model")
    return features, linear, _blocks(features)


class Tokens:
    """The words of one text as one vectorizer sees them, with where they are in the text."""

    def __init__(self, text: str, vectorizer: CountVectorizer) -> None:
        pattern = re.compile(vectorizer.token_pattern)
        preprocess: Callable[[str], str] = vectorizer.build_preprocessor()
        stop_words = vectorizer.get_stop_words() or frozenset()
        self.spans = [(m.start(), m.end()) for m in pattern.finditer(text)]
        self.words = [text[s:e] for s, e in self.spans]
        kept = [(i, preprocess(w)) for i, w in enumerate(self.words)]
        kept = [(i, w) for i, w in kept if w not in stop_words]
        low, high = vectorizer.ngram_range
        self.occurrences: dict[str, list[list[int]]] = defaultdict(list)
        for n in range(low, high + 1):
            for j in range(len(kept) - n + 1):
                window = kept[j : j + n]
                self.occurrences[" ".join(w for _, w in window)].append([i for i, _ in window])


def union_parts(features: Any) -> list[tuple[Any, float | None]] | None:
    """(transformer, weight) of each column block of a FeatureUnion, or None when it is not one
    whose output is just its parts' outputs side by side (a passthrough part, or not a union)."""
    if not isinstance(features, FeatureUnion):
        return None
    weights = features.transformer_weights or {}
    parts = [(t, weights.get(name)) for name, t in features.transformer_list if t != "drop"]
    return None if any(t == "passthrough" for t, _ in parts) else parts


class TextLinearMethod(Method):
    name = "linear_shap"
    serial = False
    background = "the empty text: the base value is the model's output for \"\""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        self._features, linear, self._blocks = text_linear_parts(model.estimator)
        self._parts = union_parts(self._features)
        empty = self._transform(np.array([""], dtype=object))
        self._width = empty.shape[1]
        if self._width != linear.coef_.shape[-1]:
            raise FailedPrecondition("the text features and the linear model disagree on the number of columns")
        self.explainer = shap.LinearExplainer((linear.coef_, linear.intercept_), empty)
        self.output_space = "margin" if self.classes else "value"
        # The linear step's own output on the features already made: the text is transformed once.
        raw_name = "decision_function" if self.classes else "predict"
        self._raw: Callable[[sp.csr_matrix], np.ndarray] = getattr(linear, raw_name)
        self._linear = linear
        # Multinomial logistic regression: predict_proba is the softmax of decision_function, so
        # the probabilities come from the margins the attributions need (one product, not two).
        self._softmax = isinstance(linear, LogisticRegression) and len(self.classes) > 2

    def _margins(self, matrix: sp.csr_matrix) -> np.ndarray:
        """decision_function's own arithmetic, without its input checks: the matrix is ours."""
        if self._softmax:
            return np.asarray(safe_sparse_dot(matrix, self._linear.coef_.T, dense_output=True) + self._linear.intercept_)
        return self._raw(matrix)

    def _transform(self, texts: np.ndarray) -> sp.csr_matrix:
        """The union's transform without its per-call job dispatch, and its blocks stacked as CSR
        (the union stacks a dense block through COO): the same matrix, about half the time."""
        if self._parts is None:
            return sp.csr_matrix(self._features.transform(texts))
        blocks = []
        for transformer, weight in self._parts:
            block = transformer.transform(texts)
            block = block if weight is None else block * weight
            blocks.append(block if sp.issparse(block) else sp.csr_matrix(block))
        return sp.hstack(blocks, format="csr")

    @property
    def features(self) -> int:
        return self._width

    def predict_and_explain(self, inputs: np.ndarray, label: str) -> tuple[PredictionBatch, list[RowAttributions]]:
        """A classifier's probabilities come from its linear step on the features made for the
        explanation: the text is transformed once, not twice (it is most of the cost)."""
        if not self.classes or not self.model.card.probabilities:
            return super().predict_and_explain(inputs, label)
        matrix = self._transform(inputs)
        raw = self._margins(matrix)
        probabilities = softmax(raw.copy()) if self._softmax else self._linear.predict_proba(matrix)
        predictions = self.model.classification(probabilities)
        return predictions, self._explain_features(inputs, matrix, self.labels_to_explain(predictions, label), raw)

    def _explain(self, inputs: np.ndarray, labels: Sequence[str]) -> list[RowAttributions]:
        matrix = self._transform(inputs)
        return self._explain_features(inputs, matrix, labels, self._margins(matrix))

    def _explain_features(
        self, inputs: np.ndarray, matrix: sp.csr_matrix, labels: Sequence[str], raw: np.ndarray
    ) -> list[RowAttributions]:
        outputs = Outputs.of(self.explainer.shap_values(matrix), self.explainer.expected_value, raw)
        rows = []
        for i, label in enumerate(labels):
            values, base, output = outputs.row(i, self.classes, label)
            # With the empty text as background, only n-grams present in this text contribute.
            columns = set(matrix[i].indices.tolist())
            rows.append(RowAttributions(label, base, output, self._attribute(str(inputs[i]), values, columns)))
        return rows

    def _attribute(self, text: str, values: np.ndarray, columns: set[int]) -> list[Attribution]:
        token_values: dict[tuple[int, int], float] = {}
        derived: list[Attribution] = []
        unmatched = 0.0
        for block in self._blocks:
            stop = block.start + len(block.names)
            if block.vectorizer is None:  # every derived feature, zero or not: there are few
                derived += [Attribution(name, "derived", float(values[block.start + j])) for j, name in enumerate(block.names)]
                continue
            mine = sorted(c for c in columns if block.start <= c < stop)
            tokens = Tokens(text, block.vectorizer)
            for span in tokens.spans:
                token_values.setdefault(span, 0.0)
            for c in mine:
                found = tokens.occurrences.get(block.names[c - block.start])
                if not found:  # a tokenisation corner case: keep the sum whole rather than drop it
                    unmatched += float(values[c])
                    continue
                share = float(values[c]) / sum(len(o) for o in found)
                for occurrence in found:
                    for t in occurrence:
                        token_values[tokens.spans[t]] += share
        attributions = [Attribution(text[s:e], "token", v, 0.0, s, e) for (s, e), v in sorted(token_values.items())]
        if unmatched:
            attributions.append(Attribution(UNMATCHED, "derived", unmatched))
        return attributions + derived
