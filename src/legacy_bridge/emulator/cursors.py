"""Opaque, signed cursors, as a real upstream hands out.

A cursor carries the keyset position and a fingerprint of the query it came
from (API, filter, order), signed with the emulator's secret. A cursor that was
edited, forged, or replayed against another filter or order is rejected, which
is what the proxy must cope with: it may only store and replay cursors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class CursorError(ValueError):
    """The cursor is not one this upstream issued for this query."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(api: str, filters: dict[str, Any], order_by: str | None, order: str) -> str:
    canonical = json.dumps([api, filters, order_by, order], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CursorCodec:
    """`bound=False` accepts a cursor under any filter and order, as a careless
    upstream would: the proxy must never lean on the upstream to refuse a
    cursor it replays under the wrong query."""

    def __init__(self, secret: bytes, bound: bool = True) -> None:
        self._secret = secret
        self._bound = bound

    def _sign(self, body: bytes) -> str:
        return _b64(hmac.new(self._secret, body, hashlib.sha256).digest()[:12])

    def encode(self, key: tuple[Any, Any], query: str) -> str:
        body = json.dumps([key[0], key[1], query], separators=(",", ":")).encode()
        return f"{_b64(body)}.{self._sign(body)}"

    def decode(self, cursor: str, query: str) -> tuple[Any, Any]:
        try:
            body_text, signature = cursor.split(".")
            body = _unb64(body_text)
            sort_value, row_id, issued_for = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise CursorError("invalid cursor") from exc
        if not hmac.compare_digest(signature, self._sign(body)):
            raise CursorError("invalid cursor")
        if self._bound and issued_for != query:
            raise CursorError("cursor does not belong to this filter and order")
        return sort_value, row_id
