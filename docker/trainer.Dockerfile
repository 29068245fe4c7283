# syntax=docker/dockerfile:1.7
# CloudGuard trainer image: the `cloudguard` CLI that every pipeline step runs
# (ingest, data validate, train, evaluate, gate, promote). Build from the repo
# root:  docker build -f docker/trainer.Dockerfile -t cloudguard/trainer:TAG .
# Dependencies come from uv.lock only (`uv sync --frozen`), exactly as CI
# installs them; see docs/pipeline.md.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

# ---- build stage: resolve and install into /app/.venv --------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Third-party dependencies first, so a source change does not reinstall them.
COPY pyproject.toml uv.lock ./
COPY model/pyproject.toml model/pyproject.toml
COPY serving/pyproject.toml serving/pyproject.toml
COPY pipelines/pyproject.toml pipelines/pyproject.toml
COPY platform/pyproject.toml platform/pyproject.toml
COPY cli/pyproject.toml cli/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package cloudguard-cli

# Then our own packages, installed non-editable so the runtime needs no sources.
COPY model/ model/
COPY serving/ serving/
COPY pipelines/ pipelines/
COPY platform/ platform/
COPY cli/ cli/
COPY README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package cloudguard-cli

# ---- runtime stage: the interpreter and the virtualenv, nothing else ----------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
# The commit the image was built from, written into every model's lineage and
# every gate record (`--build-arg GIT_COMMIT=$(git rev-parse HEAD)`).
ARG GIT_COMMIT=unknown
RUN groupadd --system --gid ${UID} cloudguard \
    && useradd --system --uid ${UID} --gid ${UID} --home-dir /tmp --shell /usr/sbin/nologin cloudguard
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    CLOUDGUARD_GIT_COMMIT=${GIT_COMMIT} \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true
WORKDIR /tmp
USER 10001:10001
# Exec form: the step process is PID 1 and receives SIGTERM from the kubelet.
ENTRYPOINT ["cloudguard"]
CMD ["--help"]
