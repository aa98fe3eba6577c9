"""Named value transforms of the field tables: `"enrollmentStatus | lower"`.

A mapping names transforms; it never holds code. Adding one is adding a line
here. `OMIT` is the value that removes a key from the legacy item (the
contract's "omitted when null").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _omit_if_null(value: Any) -> Any:
    return OMIT if value is None else value


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
    "omit_if_null": (_omit_if_null, "leave the key out of the item when the value is null"),
    "float": (_float, "write a number as a JSON float (65 -> 65.0)"),
    "int": (_int, "write a whole float as an integer (3.0 -> 3)"),
    "string": (_string, "write the value as a string"),
}


def compose(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """One function applying the named transforms left to right."""
    functions = [TRANSFORMS[name][0] for name in names]
    if not functions:
        return lambda value: value
    if len(functions) == 1:
        return functions[0]

    def apply(value: Any) -> Any:
        for function in functions:
            if value is OMIT:
                return value
            value = function(value)
        return value

    return apply
