"""DataFrame inputs through the batcher (stacked, split back per caller), the job queue's byte
format and the prediction cache's hash; and the checked columns the serving path keeps instead of a
DataFrame until the estimator is called."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from inference_svc.batching import BatchSettings, ModelBatcher
from inference_svc.cache import input_digest
from protoserve_models.adding import add_model
from protoserve_models.batch_codec import decode_arrays, decode_batch, encode_arrays, encode_batch
from protoserve_models.columns import ColumnInputs
from protoserve_models.inputs import ServedInputs, check_rows, model_input, rows_to_inputs, stack_inputs
from protoserve_models.model import LoadedModel, PredictionBatch
from tests.models.conftest import LIMITS, NUMERIC, json_rows, load
from tests.models.test_add_model import penguin_pipeline


@pytest.fixture(scope="module")
def penguin_model(tmp_path_factory: pytest.TempPathFactory, penguins: pd.DataFrame) -> LoadedModel:
    root = tmp_path_factory.mktemp("frames")
    add_model("penguins", penguin_pipeline(penguins), penguins, "species", root)
    return load(root, "penguins")


def frame_for(model: LoadedModel, penguins: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    inputs = rows_to_inputs(model.card, json_rows(penguins[NUMERIC + ["island", "sex"]].iloc[start:stop]), LIMITS)
    assert isinstance(inputs, pd.DataFrame)
    return inputs


def test_frames_round_trip_the_job_format() -> None:
    frame = pd.DataFrame({
        "x": [1.5, float("nan")],
        "n": pd.array([3, None], dtype="Int64"),
        "flag": [True, False],
        "island": pd.Categorical(["Dream", None], categories=["Dream", "Biscoe"]),
        "sex": pd.array(["male", None], dtype="str"),
        "note": pd.Series(["a", float("nan")], dtype=object),
    })
    decoded = decode_arrays(encode_arrays({"inputs": frame}))["inputs"]
    pd.testing.assert_frame_equal(decoded, frame)
    assert input_digest(decoded) == input_digest(frame)
    assert input_digest(frame.assign(x=[1.5, 2.0])) != input_digest(frame)


def test_new_outputs_round_trip() -> None:
    batch = PredictionBatch(label_indices=pd.Series([0, 1]).to_numpy(), scores=pd.Series([-0.5, 0.25]).to_numpy())
    decoded = decode_batch(encode_batch(batch))
    assert decoded.label_indices.tolist() == [0, 1] and decoded.scores.tolist() == [-0.5, 0.25]
    assert len(decoded) == 2 and decoded.probabilities is None


def through_batcher(model: LoadedModel, parts: list[ServedInputs]) -> tuple[list[PredictionBatch], list[ServedInputs]]:
    """The parts submitted at once to one batcher: each caller's answer, and the inputs of each model call."""
    calls: list[ServedInputs] = []

    async def run(model: LoadedModel, inputs: ServedInputs) -> PredictionBatch:
        calls.append(inputs)
        await asyncio.sleep(0)
        return model.predict(inputs)

    async def scenario() -> list[PredictionBatch]:
        batcher = ModelBatcher(model, run, BatchSettings(max_batch_size=64, max_queue_delay=0.0, max_queue_size=8))
        return await asyncio.gather(*(batcher.submit(p) for p in parts))

    return asyncio.run(scenario()), calls


def test_batcher_stacks_frames_and_splits_answers(penguin_model: LoadedModel, penguins: pd.DataFrame) -> None:
    parts = [frame_for(penguin_model, penguins, a, b) for a, b in ((0, 3), (3, 4), (4, 10))]
    answers, calls = through_batcher(penguin_model, list(parts))
    whole = penguin_model.predict(stack_inputs(parts))
    assert [len(c) for c in calls] == [10]  # the three calls that met in one turn of the loop ran as one
    assert [len(a) for a in answers] == [3, 1, 6]
    assert sum((a.label_indices.tolist() for a in answers), []) == whole.label_indices.tolist()
    assert stack_inputs(parts).dtypes.equals(parts[0].dtypes)


def columns_for(model: LoadedModel, penguins: pd.DataFrame, start: int, stop: int) -> ColumnInputs:
    inputs = check_rows(model.card, json_rows(penguins[NUMERIC + ["island", "sex"]].iloc[start:stop]), LIMITS)
    assert isinstance(inputs, ColumnInputs)
    return inputs


def test_checked_columns_build_the_frame_rows_to_inputs_builds(penguin_model: LoadedModel, penguins: pd.DataFrame) -> None:
    columns = columns_for(penguin_model, penguins, 0, 20)  # row 3 has no measurements and no sex
    frame = frame_for(penguin_model, penguins, 0, 20)
    pd.testing.assert_frame_equal(columns.frame(), frame)
    assert columns.frame() is columns.frame() and model_input(columns) is columns.frame()  # built once
    assert input_digest(columns) == input_digest(frame)
    pd.testing.assert_frame_equal(columns.take([3, 0]).frame(), frame.iloc[[3, 0]].reset_index(drop=True))
    numbers = columns.take([0, 3]).column(0)
    assert numbers.dtype == float and numbers[0] == penguins["bill_length_mm"][0] and pd.isna(numbers[1])


def test_batcher_stacks_checked_columns_into_one_frame_per_call(penguin_model: LoadedModel, penguins: pd.DataFrame) -> None:
    parts = [columns_for(penguin_model, penguins, a, b) for a, b in ((0, 3), (3, 4), (4, 10))]
    answers, calls = through_batcher(penguin_model, list(parts))
    assert len(calls) == 1 and isinstance(calls[0], ColumnInputs)
    pd.testing.assert_frame_equal(calls[0].frame(), frame_for(penguin_model, penguins, 0, 10))
    whole = penguin_model.predict(frame_for(penguin_model, penguins, 0, 10))
    assert sum((a.label_indices.tolist() for a in answers), []) == whole.label_indices.tolist()
