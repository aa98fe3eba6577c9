"""Trace context across the proxy, with OpenTelemetry.

Always: a `traceparent` a client sends is taken as the parent of the request,
and every upstream request carries the trace on, so a trace started by a
legacy client continues in the GraphQL platform. With
OTEL_EXPORTER_OTLP_ENDPOINT set (the standard OpenTelemetry variable), spans
are recorded and exported over OTLP/HTTP: one for each legacy request, one for
each upstream call, one for each shadow comparison (linked to its request).
Without it nothing is recorded or sent. Span attributes carry route templates
and statuses, never a token or a request value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind

from legacy_bridge import __version__
from legacy_bridge.errors import ConfigError

_configured = False


def setup() -> None:
    """Record and export spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; once per process."""
    global _configured
    if _configured or not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    try:  # the exporter is the [otlp] extra
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ModuleNotFoundError:
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not "
                          "installed: pip install 'legacy-bridge[otlp]'") from None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "legacy-bridge"),
        "service.version": __version__}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def _tracer() -> trace.Tracer:
    return trace.get_tracer("legacy_bridge", __version__)


@contextmanager
def request_span(method: str, headers: Mapping[str, str]) -> Iterator[Span]:
    """The server span of one legacy request, child of the client's `traceparent`
    (`headers`: the trace headers the client sent). With nothing to record or pass
    on, nothing is done at all: the request path stays as cheap as without tracing."""
    if not _configured and not headers:
        yield trace.INVALID_SPAN
        return
    parent = propagate.extract(headers)
    with _tracer().start_as_current_span(f"{method} legacy request", context=parent,
                                         kind=SpanKind.SERVER) as span:
        yield span


@contextmanager
def upstream_span(api: str, headers: MutableMapping[str, str]) -> Iterator[Span]:
    """A client span for one upstream call; its context goes out in `headers`."""
    if not _configured and not trace.get_current_span().get_span_context().is_valid:
        yield trace.INVALID_SPAN
        return
    with _tracer().start_as_current_span(f"upstream {api}", kind=SpanKind.CLIENT) as span:
        propagate.inject(headers)
        yield span


def trace_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The W3C trace headers among an ASGI request's headers."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw
            if k in (b"traceparent", b"tracestate")}


def current_link() -> Link | None:
    """The current span as a link, for work done later on its behalf (a comparison)."""
    context = trace.get_current_span().get_span_context()
    return Link(context) if context.is_valid else None


@contextmanager
def comparison_span(route: str, link: Link | None) -> Iterator[Span]:
    with _tracer().start_as_current_span(f"shadow comparison {route}",
                                         links=[link] if link else None) as span:
        yield span
