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
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir .

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
RUN legacy-bridge check
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["legacy-bridge", "healthcheck"]
CMD ["legacy-bridge", "serve"]
