"""Reading a model file safely, and checking a loaded version on its card's reference sample.

Model files are read with skops, never pickle. Types defined by scikit-learn, numpy and scipy
themselves are trusted (with skops's own defaults: builtins and the like); anything else, such
as a user's function in a FunctionTransformer or a custom estimator class, is refused by name
unless it is listed as trusted, since loading it and calling it runs its code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from protoserve_models.card import MODEL_FILE, ModelCard
from protoserve_models.inputs import InputLimits, rows_to_inputs
from protoserve_models.model import LoadedModel

TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
# A partial only binds arguments to a function that skops checks on its own (HistGradientBoosting
# fitted on categories holds partial(sklearn.utils.validation.check_array, ...)).
TRUSTED_STANDARD_TYPES = ("functools.partial",)
# Reference rows may be longer than the service's text limit; a feature's own max_length still holds.
_REFERENCE_TEXT_LIMIT = 1_000_000


class UntrustedModelError(RuntimeError):
    """The model file holds types that are not on the allow-list."""


class ReferenceSampleError(RuntimeError):
    """The loaded model cannot answer its own card's reference sample."""


def untrusted_types(path: Path, trusted: Iterable[str]) -> tuple[list[str], list[str]]:
    """The types in the file that skops does not trust by default, split into those trusted here
    (by module prefix or by name) and those that are not."""
    allowed = set(trusted)
    found = sio.get_untrusted_types(file=path)
    accepted = [t for t in found if t in allowed or t in TRUSTED_STANDARD_TYPES or t.startswith(TRUSTED_MODULE_PREFIXES)]
    refused = sorted(t for t in found if t not in accepted)
    return accepted, refused


def read_estimator(path: Path, trusted: Iterable[str]) -> Any:
    trusted = list(trusted)
    named = sorted({*trusted, *TRUSTED_STANDARD_TYPES})
    try:
        # One pass over the file when skops's defaults and the names trusted here cover every type in
        # it, the usual case. Auditing first would read the file twice: 2 s of a text model's 4.4 s.
        return sio.load(path, trusted=named)
    except UntrustedTypesFoundException:
        pass  # some type is trusted here only by its module prefix, or not at all: audit it
    accepted, refused = untrusted_types(path, trusted)
    if refused:
        raise UntrustedModelError(
            f"{path} holds types that are not trusted: {', '.join(refused)}; "
            "add them to PROTOSERVE_TRUSTED_TYPES only if you trust their code"
        )
    return sio.load(path, trusted=sorted(accepted) or None)


def sample_rows(card: ModelCard) -> list[dict[str, Any]]:
    """The card's column-oriented reference sample as request rows (the card's features only)."""
    sample = card.reference_sample
    missing = [name for name in card.feature_names if name not in sample]
    if missing:
        raise ReferenceSampleError(f"reference_sample lacks the feature(s) {', '.join(missing)}")
    columns = [sample[name] for name in card.feature_names]
    count = len(columns[0])
    if any(len(column) != count for column in columns):
        raise ReferenceSampleError("reference_sample: every feature needs the same number of rows")
    return [dict(zip(card.feature_names, values)) for values in zip(*columns)]


def check_reference_sample(model: LoadedModel) -> None:
    """The model must answer its card's reference sample through the path requests take."""
    card = model.card
    if not card.reference_sample:
        return
    rows = sample_rows(card)
    if not rows:
        return
    try:
        inputs = rows_to_inputs(card, rows, InputLimits(max_rows=len(rows), max_text_length=_REFERENCE_TEXT_LIMIT))
        outputs = model.predict(inputs)
    except Exception as exc:  # whatever it is, this version cannot serve
        raise ReferenceSampleError(f"the model cannot answer its card's reference sample: {exc}") from exc
    if len(outputs) != len(rows):
        raise ReferenceSampleError(f"the model answered {len(outputs)} rows for {len(rows)} reference rows")


def load_version(directory: Path, trusted: Iterable[str], fast_kernel: bool = False) -> LoadedModel:
    """Read one version directory (card and model file), refusing untrusted types, and check it on
    its reference sample."""
    card = ModelCard.read(directory)
    model = LoadedModel(card, read_estimator(directory / MODEL_FILE, trusted), fast_kernel)
    check_reference_sample(model)
    return model
