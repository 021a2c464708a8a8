"""Kubernetes resource.Quantity parsing (the serialized grammar), to exact Decimals."""

from __future__ import annotations

import re
from decimal import Decimal

QUANTITY_REGEX_MSG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_GRAMMAR = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value; ValueError with the apiserver's message when it does not parse."""
    if isinstance(value, bool):
        raise ValueError(QUANTITY_REGEX_MSG)
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _GRAMMAR.fullmatch(value)
    if not m:
        raise ValueError(QUANTITY_REGEX_MSG)
    number = Decimal(m["num"])
    suffix = m["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(2) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number * (Decimal(10) ** _DECIMAL[suffix])
    if suffix:
        return number * (Decimal(10) ** int(suffix[1:]))
    return number


def format_quantity(value: Decimal) -> str:
    """A canonical-enough rendering for messages: integers plain, fractions in milli-units."""
    if value == value.to_integral_value():
        return str(int(value))
    milli = value * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return str(value)
