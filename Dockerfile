# legacy-bridge as a container sidecar.
# BASE_IMAGE: any Debian-like image with python3 and venv (default: the official slim
# Python image). The default mapping tables ship inside the package and are checked
# at build time: a broken table fails the build, not the first request. A deployment
# with tables of its own mounts their folder and sets BRIDGE_MAPPINGS_DIR.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# A CA bundle for pip where the build must trust a proxy's certificate (mounted
# into the build; unset otherwise).
ARG PIP_CERT
WORKDIR /src
# Dependencies first, exactly as locked: a change to the source reuses this layer.
COPY requirements-image.lock ./
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps \
      -r requirements-image.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin bridge \
 && mkdir -p /app/data \
 && chown 10001 /app/data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BRIDGE_HOST=0.0.0.0 \
    BRIDGE_PORT=8080 \
    BRIDGE_STORE_URL=sqlite:////app/data/bridge.sqlite3
RUN legacy-bridge check --tables
USER 10001
EXPOSE 8080
# Standard library only: runs every 10 s without importing the CLI or the app.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-m", "legacy_bridge.healthcheck"]
CMD ["legacy-bridge", "serve"]
