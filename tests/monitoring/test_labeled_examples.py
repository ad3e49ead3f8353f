"""The inputs kept for labeled examples: only those within the size cap, none when it is 0."""

from __future__ import annotations

from protoserve.monitoring.v1 import labeled_example_pb2
from protoserve.monitoring.v1 import prediction_event_pb2 as event_pb

from monitoring_svc.labeled_examples import LabeledExamples


def events() -> list[event_pb.PredictionEvent]:
    return [
        event_pb.PredictionEvent(prediction_id="a", model="m", version="1", time=7200.5, text_input="short", label="x"),
        event_pb.PredictionEvent(prediction_id="b", model="m", version="1", time=7200.5, text_input="y" * 500, label="x"),
        event_pb.PredictionEvent(prediction_id="", model="m", version="1", time=7200.5, error_code="INVALID_ARGUMENT"),
        event_pb.PredictionEvent(prediction_id="c", model="n", version="2", time=3.0, numeric_inputs=[1.5, 2.5], value=1.0),
    ]


def test_only_inputs_within_the_cap_are_kept() -> None:
    kept = LabeledExamples("p", "s", 100, 10).collect(events())
    assert set(kept) == {2, 0} and set(kept[2]) == {"a"}  # by hour slot; "b" is over the cap
    assert labeled_example_pb2.LabeledExample.FromString(kept[2]["a"]).text_input == "short"
    assert list(labeled_example_pb2.LabeledExample.FromString(kept[0]["c"]).numeric_inputs) == [1.5, 2.5]


def test_a_cap_of_zero_keeps_nothing() -> None:
    assert not LabeledExamples("p", "s", 0, 10).collect(events())
