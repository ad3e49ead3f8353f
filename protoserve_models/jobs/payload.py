"""A job's rows, from inline rows or a CSV / JSON-lines payload, checked against the model card.

Format errors name the payload line (1 is the first line); every row then goes through the same
validation as Predict (inputs.rows_to_inputs), so nothing reaches a model unchecked.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from protoserve_models.card import ModelCard
from protoserve_models.inputs import InputLimits, ModelInputs, check_row_count, rows_to_inputs
from protoserve_runtime.errors import InvalidArgument

PayloadFormat = Literal["csv", "jsonl"]


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = payload[: exc.start].count(b"\n") + 1
        raise InvalidArgument.for_field("payload", f"line {line}: not valid UTF-8") from exc


def _line_error(line: int, problem: str, field: str = "payload") -> InvalidArgument:
    return InvalidArgument.for_field(field, f"line {line}: {problem}")


def csv_rows(card: ModelCard, payload: bytes, limits: InputLimits) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(_text(payload), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidArgument.for_field("payload", "the CSV is empty; its first line must name the features")
        header = [name.strip() for name in header]
        expected = set(card.feature_names)
        missing = [name for name in card.feature_names if name not in header]
        unknown = [name for name in header if name not in expected]
        if missing or unknown or len(set(header)) != len(header):
            raise _line_error(1, f"the header must name each feature once: {', '.join(card.feature_names)}"
                              + (f"; missing {', '.join(missing)}" if missing else "")
                              + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        kinds = {f.name: "text" if card.is_text else f.type for f in card.inputs}
        rows: list[dict[str, Any]] = []
        for record in reader:
            if not record:
                continue  # a blank line
            line = reader.line_num
            if len(record) != len(header):
                raise _line_error(line, f"expected {len(header)} fields, got {len(record)}")
            if len(rows) >= limits.max_rows:
                check_row_count(len(rows) + 1, limits)
            rows.append({name: csv_cell(value, kinds[name], name, line) for name, value in zip(header, record)})
    except csv.Error as exc:
        raise _line_error(reader.line_num, f"malformed CSV: {exc}") from exc
    return rows


def numeric_csv_fast(card: ModelCard, payload: bytes, limits: InputLimits) -> np.ndarray | None:
    """A well-formed numeric CSV in one vectorised step; None sends anything else to the checked path.

    The checked path (csv_rows, then rows_to_inputs) finds the same rows valid and names the line
    of any problem; this one only makes the common case of a large clean file fast.
    """
    if card.is_text or card.input_format != "array" or any(f.type != "double" for f in card.inputs):
        return None
    try:
        reader = csv.reader(io.StringIO(payload.decode("utf-8-sig"), newline=""), strict=True)
        header = [name.strip() for name in next(reader)]
        records = [record for record in reader if record]
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    names = card.feature_names
    if sorted(header) != sorted(names) or not records or len(records) > limits.max_rows:
        return None
    try:
        matrix = np.array(records, dtype=np.float64)
    except ValueError:  # a ragged row or a cell that is not a number
        return None
    if matrix.ndim != 2 or matrix.shape[1] != len(names) or not np.isfinite(matrix).all():
        return None
    return np.ascontiguousarray(matrix[:, [header.index(name) for name in names]])


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def csv_cell(value: str, kind: str, name: str, line: int, field: str = "payload") -> Any:
    """A CSV cell as the JSON value a row would carry; an empty cell is a missing value (null),
    which the row check accepts only where the feature is nullable. A text model's text is kept as is.
    Errors name the line of ``field``."""
    if kind == "text":
        return value
    if value == "":
        return None
    if kind in ("string", "categorical"):
        return value
    if kind == "boolean":
        flag = _BOOLEANS.get(value.strip().lower())
        if flag is None:
            raise _line_error(line, f"{name}: {value!r} is not true or false", field)
        return flag
    try:
        number = float(value)
    except ValueError:
        raise _line_error(line, f"{name}: {value!r} is not a number", field) from None
    if not math.isfinite(number):
        raise _line_error(line, f"{name}: must be a finite number, got {value!r}", field)
    return int(number) if kind == "integer" and number.is_integer() else number


def json_lines_rows(payload: bytes, limits: InputLimits) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for line, text in enumerate(_text(payload).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _line_error(line, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise _line_error(line, "each line must be a JSON object of feature names to values")
        if len(rows) >= limits.max_rows:
            check_row_count(len(rows) + 1, limits)
        rows.append(row)
    return rows


def job_inputs(
    card: ModelCard,
    rows: Sequence[Mapping[str, Any]],
    payload: bytes,
    payload_format: PayloadFormat | None,
    limits: InputLimits,
    max_payload_bytes: int,
) -> ModelInputs:
    """The validated inputs of a job (as the model was fitted): rows inline, or a payload in the given format."""
    if rows and payload:
        raise InvalidArgument.for_field("payload", "send rows inline or a payload, not both")
    if payload:
        if len(payload) > max_payload_bytes:
            raise InvalidArgument.for_field(
                "payload", f"{len(payload)} bytes is over the limit of {max_payload_bytes} bytes per job"
            )
        if payload_format is None:
            raise InvalidArgument.for_field("payload_format", "name the payload's format: CSV or JSON lines")
        if payload_format == "csv":
            fast = numeric_csv_fast(card, payload, limits)
            if fast is not None:
                return fast
            rows = csv_rows(card, payload, limits)
        else:
            rows = json_lines_rows(payload, limits)
    return rows_to_inputs(card, rows, limits)


def batches(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)
