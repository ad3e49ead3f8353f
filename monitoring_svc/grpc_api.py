"""The gRPC adapter for protoserve.monitoring.v1.MonitoringService: messages in, core call, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2
from protoserve.monitoring.v1 import monitoring_service_pb2 as pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc as pb_grpc

from monitoring_svc.alerts import Alert
from monitoring_svc.core import MonitoringCore, WindowReport
from monitoring_svc.summary import FeatureDrift
from protoserve_runtime.grpc_errors import translate_errors, translate_stream_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MonitoringService"].full_name

_KINDS = {"numeric": pb.FEATURE_KIND_NUMERIC, "categorical": pb.FEATURE_KIND_CATEGORICAL, "text": pb.FEATURE_KIND_TEXT}
_RULES = {
    "feature_drift": pb.ALERT_RULE_FEATURE_DRIFT,
    "accuracy_below": pb.ALERT_RULE_ACCURACY_BELOW,
    "latency_p99_above": pb.ALERT_RULE_LATENCY_P99_ABOVE,
    "error_rate_above": pb.ALERT_RULE_ERROR_RATE_ABOVE,
}
_STATES = {"firing": pb.ALERT_STATE_FIRING, "resolved": pb.ALERT_STATE_RESOLVED}


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def alert_to_proto(alert: Alert) -> pb.Alert:
    return pb.Alert(
        id=alert.id,
        rule=_RULES.get(alert.rule, pb.ALERT_RULE_UNSPECIFIED),
        state=_STATES.get(alert.state, pb.ALERT_STATE_UNSPECIFIED),
        model=alert.model, version=alert.version, feature=alert.feature, value=alert.value, threshold=alert.threshold,
        message=alert.message, time=_timestamp(alert.time), window=alert.window,
    )


def _window_to_proto(report: WindowReport) -> pb.WindowMetrics:
    t, o, a = report.traffic, report.outputs, report.accuracy
    return pb.WindowMetrics(
        window=report.window.name, window_seconds=report.window.seconds,
        request_count=t.request_count, row_count=t.row_count, error_count=t.error_count, errors_by_code=t.errors_by_code,
        latency_p50_ms=t.latency_p50_ms, latency_p95_ms=t.latency_p95_ms, latency_p99_ms=t.latency_p99_ms,
        outputs=pb.OutputDistribution(label_shares=o.label_shares, mean=o.mean, standard_deviation=o.standard_deviation),
        accuracy=pb.Accuracy(labeled_count=a.labeled_count, accuracy=a.accuracy, f1_macro=a.f1_macro, mae=a.mae, rmse=a.rmse),
        timeline=[
            pb.TimePoint(time=_timestamp(p.start), request_count=p.request_count, row_count=p.row_count,
                         error_count=p.error_count, latency_p99_ms=p.latency_p99_ms)
            for p in report.timeline
        ],
    )


def _drift_to_proto(feature: FeatureDrift) -> pb.FeatureDrift:
    return pb.FeatureDrift(
        feature=feature.feature, kind=_KINDS[feature.kind], drifted=feature.drifted, insufficient_data=feature.insufficient_data,
        tests=[pb.DriftTest(name=t.name, statistic=t.statistic, p_value=t.p_value, threshold=t.threshold, drifted=t.drifted)
               for t in feature.tests],
        bins=[pb.HistogramBin(label=label, reference_share=r, live_share=live) for label, r, live in feature.bins],
    )


class MonitoringServicer(pb_grpc.MonitoringServiceServicer):
    def __init__(self, core: MonitoringCore) -> None:
        self._core = core

    @translate_errors
    async def RecordFeedback(
        self, request: pb.RecordFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordFeedbackResponse:
        truth = request.WhichOneof("truth")
        result = await self._core.record_feedback(
            request.prediction_id,
            request.label if truth == "label" else None,
            request.value if truth == "value" else None,
        )
        return pb.RecordFeedbackResponse(model=result.model, version=result.version, correct=result.correct, error=result.error)

    @translate_errors
    async def GetModelMetrics(
        self, request: pb.GetModelMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelMetricsResponse:
        model, version, reports = await self._core.model_metrics(request.model, request.version, request.window)
        return pb.GetModelMetricsResponse(model=model, version=version, windows=[_window_to_proto(r) for r in reports])

    @translate_errors
    async def GetDrift(self, request: pb.GetDriftRequest, context: grpc.aio.ServicerContext) -> pb.GetDriftResponse:
        report = await self._core.drift(request.model, request.version, request.window)
        return pb.GetDriftResponse(
            model=report.model, version=report.version, window=report.window.name, row_count=report.row_count,
            reference_count=report.reference_count, features=[_drift_to_proto(f) for f in report.features],
        )

    @translate_errors
    async def ListAlerts(self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext) -> pb.ListAlertsResponse:
        firing, history, evaluated = await self._core.list_alerts(request.model, request.limit)
        return pb.ListAlertsResponse(
            firing=[alert_to_proto(a) for a in firing],
            history=[alert_to_proto(a) for a in history],
            last_evaluation_time=_timestamp(evaluated) if evaluated else None,
        )

    @translate_stream_errors
    async def WatchAlerts(
        self, request: pb.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchAlertsResponse]:
        async for alert in self._core.watch_alerts(request.model):
            yield pb.WatchAlertsResponse(alert=alert_to_proto(alert))


def binding(core: MonitoringCore) -> ServiceBinding:
    servicer = MonitoringServicer(core)
    return ServiceBinding(SERVICE_NAME, lambda server: pb_grpc.add_MonitoringServiceServicer_to_server(servicer, server))
