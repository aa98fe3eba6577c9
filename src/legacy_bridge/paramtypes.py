"""The kinds of legacy parameter a route table may declare, one entry each. Pure.

An entry says how a raw query or path value parses (strictly, as the contract's
"Precise rules" ask: base-10 integers without sign or spaces; enum values
exactly as the table spells them), how OpenAPI describes it, and what upstream
variable it needs, which the table loader checks against the GraphQL schema.
Parsing (params.py), the OpenAPI document (openapi.py) and the loader
(mapping.py) all read this table; adding a kind of parameter is adding an entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from legacy_bridge.errors import InvalidParameter

MAX_PAGE = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

Schema = dict[str, Any]


class Declared(Protocol):
    """What a parsing function sees of a declared parameter."""

    @property
    def name(self) -> str: ...
    @property
    def default(self) -> str | int | None: ...
    @property
    def max(self) -> int | None: ...
    @property
    def values(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Variable:
    """The upstream variable a kind of parameter fills: its leaf kind and list-ness."""

    leaf: Literal["scalar", "enum"]
    is_list: bool


@dataclass(frozen=True)
class ParamType:
    parse: Callable[[Declared, str], Any]  # raw text -> the value sent upstream
    schema: Callable[[Declared], Schema]  # OpenAPI schema of the parameter
    about: str  # for the loader's "use one of" message
    variable: Variable | None = None  # None: the parameter drives paging, not a variable
    needs: tuple[str, ...] = ()  # table keys the kind requires (e.g. default, max)
    list_style: bool = False  # comma-separated: OpenAPI style=form, explode=false


def integer(param: Declared, raw: str, low: int, high: int) -> int:
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidParameter(f"{param.name} must be an integer from {low} to {high}")
    return int(raw)


def _uuid(param: Declared, raw: str) -> str:
    if not _UUID.fullmatch(raw):
        raise InvalidParameter(f"{param.name} must be a UUID")
    return raw


def _enum(param: Declared, raw: str) -> str:
    if raw not in param.values:
        raise InvalidParameter(f"{param.name} must be one of: {', '.join(param.values)}")
    return param.values[raw]


def _enum_list(param: Declared, raw: str) -> list[str]:
    chosen = [part.lstrip(" ") for part in raw.split(",")]
    if not all(part in param.values for part in chosen):
        raise InvalidParameter(f"{param.name} must be a comma-separated list of: "
                               f"{', '.join(param.values)}")
    return sorted({param.values[part] for part in chosen})  # canonical: cache keys agree


def _enum_schema(param: Declared) -> Schema:
    schema: Schema = {"type": "string", "enum": list(param.values)}
    if param.default is not None:
        schema["default"] = param.default
    return schema


PARAM_TYPES: dict[str, ParamType] = {
    "uuid": ParamType(
        _uuid, lambda p: {"type": "string", "format": "uuid",
                          "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                                     "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"},
        "a UUID", Variable("scalar", is_list=False)),
    "page": ParamType(
        lambda p, raw: integer(p, raw, 1, MAX_PAGE),
        lambda p: {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
        "the 1-based page number"),
    "per_page": ParamType(
        lambda p, raw: integer(p, raw, 1, p.max or 1),
        lambda p: {"type": "integer", "minimum": 1, "maximum": p.max, "default": p.default},
        "the page size", needs=("default", "max")),
    "enum": ParamType(_enum, _enum_schema, "one value of the table's `values`",
                      Variable("enum", is_list=False), needs=("values",)),
    "enum_list": ParamType(
        _enum_list,
        lambda p: {"type": "array", "minItems": 1,
                   "items": {"type": "string", "enum": list(p.values)}},
        "comma-separated values of the table's `values`", Variable("enum", is_list=True),
        needs=("values",), list_style=True),
}

# The kinds whose parameters every paged route has exactly one of.
PAGING = ("page", "per_page")
