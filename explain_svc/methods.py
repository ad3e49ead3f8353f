"""Which explainer a model gets, by what the model is: the exact one where its type allows,
exact model-agnostic SHAP where the features are few, the permutation explainer otherwise."""

from __future__ import annotations

from explain_svc.attributions import Method
from explain_svc.frames import FrameMethod, needs_raw_columns
from explain_svc.settings import ExplainSettings
from explain_svc.tabular import (
    TREE_MODELS,
    ExactMethod,
    LinearMethod,
    PermutationMethod,
    TreeMethod,
    linear_parts,
    reference_background,
)
from explain_svc.text import TextLinearMethod
from protoserve_models.model import LoadedModel


def build_method(model: LoadedModel, settings: ExplainSettings) -> Method:
    """Tree models: exact TreeSHAP. Linear models (text or tabular): linear SHAP. Others, with the
    card's reference sample as background: exact SHAP over every coalition when the features are
    few, permutation SHAP when they are many. Text models must be linear. Models fitted on named
    columns, on other types than real numbers, or giving other answers than probabilities or one
    value are explained on their raw columns (frames.py)."""
    if model.card.is_text:
        return TextLinearMethod(model)
    if needs_raw_columns(model.card):
        return FrameMethod(model, settings)
    if isinstance(model.estimator, TREE_MODELS):
        return TreeMethod(model)
    background = reference_background(model.card, settings.explain_background_rows)
    if linear_parts(model.estimator) is not None:
        return LinearMethod(model, background)
    if len(model.card.inputs) <= settings.explain_exact_max_features:
        return ExactMethod(model, background)
    return PermutationMethod(model, background, settings.explain_permutations)
