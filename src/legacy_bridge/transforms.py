"""Named value transforms of the field tables: `"enrollmentStatus | lower"`.

A mapping names transforms; it never holds code. Adding one is adding a line
here. `omit_if_null` is the one that is not a function of the value: the
rewriter leaves the key out of the item when the value is null (the
contract's "omitted when null").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else value


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _string(value: Any) -> Any:
    return str(value) if value is not None else None


# name -> (function, what it is for; shown by `legacy-bridge check` on a typo)
TRANSFORMS: Final[dict[str, tuple[Callable[[Any], Any], str]]] = {
    "lower": (_lower, "lower-case an enum or string (ENROLLED -> enrolled)"),
    "upper": (_upper, "upper-case a string"),
    "omit_if_null": (_same, "leave the key out of the item when the value is null"),
    "float": (_float, "write a number as a JSON float (65 -> 65.0)"),
    "int": (_int, "write a whole float as an integer (3.0 -> 3)"),
    "string": (_string, "write the value as a string"),
}
