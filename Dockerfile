# syntax=docker/dockerfile:1
# One build stage, then one small final stage per service:
#   docker build --target inference -t protoserve-inference .   (or: make images)
# Final stages carry the runtime venv (requirements.lock only), the generated code and the built
# models; no compiler, no grpcio-tools, no dev or test packages. They run as a non-root user.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock requirements-dev.lock ./
RUN pip install -r requirements.lock
# grpcio-tools (pinned in the dev lock) generates gen/ and is removed before the venv is copied.
RUN pip install "$(grep -i '^grpcio-tools==' requirements-dev.lock)"
COPY pyproject.toml README.md ./
COPY protos protos
COPY protoserve_runtime protoserve_runtime
COPY protoserve_models protoserve_models
COPY protoserve_cli protoserve_cli
COPY inference_svc inference_svc
COPY explain_svc explain_svc
COPY worker_svc worker_svc
COPY monitoring_svc monitoring_svc
COPY gateway gateway
RUN python -m protoserve_runtime.codegen \
 && pip install --no-deps . \
 && pip uninstall -y grpcio-tools \
 && protoserve models build --repository /opt/models

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home protoserve
COPY --from=build /opt/venv /opt/venv
# Owned by the service user: job workers write the versions that training runs make.
COPY --chown=10001:10001 --from=build /opt/models /app/models
# numba (under shap) caches compiled code: in /tmp, since the root filesystem may be read-only.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba \
    PROTOSERVE_MODEL_REPOSITORY=/app/models PROTOSERVE_DATA_DIR=/app/data
WORKDIR /app
USER 10001
LABEL org.opencontainers.image.source="protoserve" org.opencontainers.image.licenses="Apache-2.0"

FROM runtime AS inference
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="protoserve-inference" org.opencontainers.image.version="${VERSION}"
ENV PROTOSERVE_INFERENCE_ADDRESS=0.0.0.0:50051 PROTOSERVE_INFERENCE_METRICS_ADDRESS=0.0.0.0:9100
EXPOSE 50051 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["protoserve", "health", "--address", "127.0.0.1:50051"]
CMD ["protoserve", "serve", "inference"]

FROM runtime AS explain
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="protoserve-explain" org.opencontainers.image.version="${VERSION}"
ENV PROTOSERVE_EXPLAIN_ADDRESS=0.0.0.0:50053 PROTOSERVE_EXPLAIN_METRICS_ADDRESS=0.0.0.0:9200
EXPOSE 50053 9200
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["protoserve", "health", "--address", "127.0.0.1:50053"]
CMD ["protoserve", "serve", "explain"]

FROM runtime AS monitoring
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="protoserve-monitoring" org.opencontainers.image.version="${VERSION}"
ENV PROTOSERVE_MONITORING_ADDRESS=0.0.0.0:50054 PROTOSERVE_MONITORING_METRICS_ADDRESS=0.0.0.0:9300
EXPOSE 50054 9300
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["protoserve", "health", "--address", "127.0.0.1:50054"]
CMD ["protoserve", "serve", "monitoring"]

# Job workers listen on no port: healthy while their Redis answers.
FROM runtime AS worker
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="protoserve-worker" org.opencontainers.image.version="${VERSION}"
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, redis; redis.Redis.from_url(os.environ['PROTOSERVE_REDIS_URL']).ping()"]
CMD ["protoserve", "serve", "worker"]

FROM runtime AS gateway
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="protoserve-gateway" org.opencontainers.image.version="${VERSION}"
ENV PROTOSERVE_GATEWAY_ADDRESS=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["protoserve", "serve", "gateway"]
