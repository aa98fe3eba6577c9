# First version: the sidecar issue completes it (health check, compose, k8s).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 bridge
COPY --from=build /opt/venv /opt/venv
COPY mappings /app/mappings
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    BRIDGE_HOST=0.0.0.0 \
    BRIDGE_PORT=8080 \
    BRIDGE_MAPPINGS_DIR=/app/mappings
# A broken mapping table fails the build, not the first request.
RUN legacy-bridge check --mappings-dir /app/mappings
USER bridge
EXPOSE 8080
CMD ["legacy-bridge", "serve"]
