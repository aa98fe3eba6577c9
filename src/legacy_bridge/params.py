"""Legacy request parameters -> GraphQL variables, validated per the mapping. Pure.

Strict, as the contract's "Precise rules" say: base-10 integers without sign,
spaces or decimals; no empty or repeated parameters; enum values exactly as
the table spells them. Unknown parameters are ignored, as the legacy API did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from legacy_bridge.errors import InvalidParameter
from legacy_bridge.mapping import Param, Route, VariablePath

MAX_PAGE = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass(frozen=True)
class Request:
    page: int
    per_page: int
    variables: Mapping[VariablePath, Any]  # the route's own, without first/after
    values: Mapping[str, Any]  # parameter name -> the value sent upstream
    plan: str | None  # the value of the scope parameter, checked against the token

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _integer(param: Param, raw: str, low: int, high: int) -> int:
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidParameter(f"{param.name} must be an integer from {low} to {high}")
    return int(raw)


def _value(param: Param, raw: str) -> Any:
    if param.type == "uuid":
        if not _UUID.fullmatch(raw):
            raise InvalidParameter(f"{param.name} must be a UUID")
        return raw
    if param.type == "page":
        return _integer(param, raw, 1, MAX_PAGE)
    if param.type == "per_page":
        return _integer(param, raw, 1, param.max or 1)
    if param.type == "enum":
        if raw not in param.values:
            raise InvalidParameter(f"{param.name} must be one of: {', '.join(param.values)}")
        return param.values[raw]
    chosen = [part.lstrip(" ") for part in raw.split(",")]
    if not all(part in param.values for part in chosen):
        raise InvalidParameter(f"{param.name} must be a comma-separated list of: "
                               f"{', '.join(param.values)}")
    return sorted({param.values[part] for part in chosen})  # canonical: cache keys agree


def _raw(param: Param, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> str | None:
    if param.source == "path":
        return path[param.name]
    values = query.get(param.name, ())
    if len(values) > 1:
        raise InvalidParameter(f"{param.name} may be given only once")
    return values[0] if values else None


def parse(route: Route, path: Mapping[str, str],
          query: Mapping[str, Sequence[str]]) -> Request:
    """Validate every parameter of `route`; raises InvalidParameter on the first bad one."""
    values: dict[str, Any] = {}
    for param in route.params.values():
        raw = _raw(param, path, query)
        if raw is None:
            if param.default is None:
                continue
            raw = str(param.default)
        values[param.name] = _value(param, raw)
    variables = {p.variable: values[p.name] for p in route.params.values()
                 if p.variable is not None and p.name in values}
    page = values[route.param_of_type("page").name] if "page" in values else 1
    per_page = values[route.param_of_type("per_page").name]
    scope = next((values[p.name] for p in route.params.values() if p.scope), None)
    return Request(page, per_page, variables, values, scope)
