"""Every error the proxy answers, bound to the contract's error table.

    BridgeError                      -> {"error": {"status", "code", "message"}}
    ├── InvalidParameter      400 invalid_parameter
    ├── UnsupportedSql        400 unsupported_sql      (Data API: names the construct)
    ├── ColumnUnavailable     400 column_unavailable   (Data API: names the alternative)
    ├── PageTooDeep           400 page_too_deep
    ├── InvalidBody           400 invalid_body         (course progress: the write body)
    ├── MissingField          400 missing_field        (names the field)
    ├── InvalidField          400 invalid_field
    ├── UnknownLesson         400 unknown_lesson       (not in the course map)
    ├── CourseIdRequired      400 course_id_required   (more courses than the cap)
    ├── Unauthorized          401 unauthorized
    ├── Forbidden             403 forbidden
    ├── NotFound              404 not_found
    ├── MethodNotAllowed      405 method_not_allowed   (Allow: GET)
    ├── ResultTooLarge        413 result_too_large     (Data API)
    ├── RateLimited           429 rate_limited         (Retry-After passed on)
    ├── UpstreamError         502 upstream_error
    │   ├── UpstreamQueryError     (GraphQL errors without data, e.g. a refused cursor)
    │   └── UpstreamOutage         (the upstream is unwell: counts for its breaker)
    ├── StoreFailed           500 internal_error       (the proxy's own progress store)
    ├── UpstreamUnavailable   503 upstream_unavailable (Retry-After)
    └── UpstreamTimeout       504 upstream_timeout

    MappingError       - a mapping table is wrong; raised at start-up, never per request.
    ConfigError        - a setting is missing or wrong; raised at start-up.
    TokenFileError     - the token table cannot be used; at start-up.
    SchemaUnavailable  - a live upstream gave no schema to check tables against
      └── UpstreamUnreachable - it did not answer at all (`check` exits 2, not 1).
    CrawlError         - `compare crawl`: a side answered something other than a page.
    LeaderCancelled    - internal: a shared upstream request lost its sender.

Domain code raises these; one handler in `app.py` renders them. Messages are
written for the client: they never carry a token, a key or upstream text.
"""

from __future__ import annotations

from typing import ClassVar


class BridgeError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, object]]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


class InvalidParameter(BridgeError):
    status, code = 400, "invalid_parameter"


class UnsupportedSql(BridgeError):
    status, code = 400, "unsupported_sql"


class ColumnUnavailable(BridgeError):
    status, code = 400, "column_unavailable"


class ResultTooLarge(BridgeError):
    status, code = 413, "result_too_large"


class PageTooDeep(BridgeError):
    status, code = 400, "page_too_deep"


class InvalidBody(BridgeError):
    status, code = 400, "invalid_body"


class MissingField(BridgeError):
    status, code = 400, "missing_field"


class InvalidField(BridgeError):
    status, code = 400, "invalid_field"


class UnknownLesson(BridgeError):
    status, code = 400, "unknown_lesson"


class CourseIdRequired(BridgeError):
    status, code = 400, "course_id_required"


class StoreFailed(BridgeError):
    """The progress store failed: the legacy API's own 500."""


class Unauthorized(BridgeError):
    status, code = 401, "unauthorized"


class Forbidden(BridgeError):
    status, code = 403, "forbidden"


class NotFound(BridgeError):
    status, code = 404, "not_found"


class MethodNotAllowed(BridgeError):
    status, code = 405, "method_not_allowed"


class RateLimited(BridgeError):
    status, code = 429, "rate_limited"


class UpstreamError(BridgeError):
    status, code = 502, "upstream_error"


class UpstreamQueryError(UpstreamError):
    """The upstream answered GraphQL errors and no data (a refused cursor among them)."""


class UpstreamOutage(UpstreamError):
    """A failure that says the upstream is unwell; `retryable` when another try may work,
    `unsent` when the request never left (so even a write may be sent again)."""

    def __init__(self, message: str, retryable: bool, unsent: bool = False) -> None:
        super().__init__(message)
        self.retryable, self.unsent = retryable, unsent


class UpstreamUnavailable(BridgeError):
    status, code = 503, "upstream_unavailable"


class UpstreamTimeout(BridgeError):
    status, code = 504, "upstream_timeout"


class MappingError(Exception):
    """A mapping table is invalid. Names the file, the key and the fix."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{file}: {key}: {problem} - fix: {fix}")
        self.file, self.key, self.problem, self.fix = file, key, problem, fix


class ConfigError(Exception):
    """A setting is missing or inconsistent; the message names it and the fix."""


class TokenFileError(ValueError):
    """The token table cannot be used; says which file and what is wrong."""


class SchemaUnavailable(Exception):
    """A schema source could not produce the schema of an endpoint."""


class UpstreamUnreachable(SchemaUnavailable):
    """No answer at all (connection refused, DNS, timeout): says nothing of the tables."""


class CrawlError(Exception):
    """A side answered something other than a page (bad token, wrong plan, down)."""


class LeaderCancelled(Exception):
    """Internal to the upstream client: the caller sending a shared request was cancelled;
    the callers waiting on it send it again themselves. Never reaches a client."""
