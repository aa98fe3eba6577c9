"""Legacy request parameters -> GraphQL variables, validated per the mapping. Pure.

Each value parses as its kind says (paramtypes.py); a parameter may not be
repeated; unknown parameters are ignored, as the legacy API did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from legacy_bridge.errors import InvalidParameter
from legacy_bridge.mapping import Param, Route
from legacy_bridge.operations import VariablePath
from legacy_bridge.paramtypes import PARAM_TYPES


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
        values[param.name] = PARAM_TYPES[param.type].parse(param, raw)
    variables = {p.variable: values[p.name] for p in route.params.values()
                 if p.variable is not None and p.name in values}
    page = values[route.param_of_type("page").name] if "page" in values else 1
    per_page = values[route.param_of_type("per_page").name]
    scope = next((values[p.name] for p in route.params.values() if p.scope), None)
    return Request(page, per_page, variables, values, scope)
