"""Kubernetes resource quantities, compared by value.

The API server stores a quantity in its canonical form (``0.5`` becomes ``500m``, ``1024Mi`` becomes
``1Gi``: the Quantity type in the Kubernetes API reference), so a quantity the operator builds and the
one it reads back may be spelt differently and mean the same. Compared as text they would make a
no-op PATCH and an ``Updated`` event after every operator restart. The format, as documented:
a signed decimal number, then a binary suffix (``Ki Mi Gi Ti Pi Ei``), a decimal one
(``n u m "" k M G T P E``) or a decimal exponent (``e3``, ``E-3``); no more than three decimal places
(a more precise value is rounded up: ``0.1m`` is ``1m``). kubernetes_asyncio has no parser of its own.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# Where the children's manifests hold quantities: the maps of container resources, and single fields.
QUANTITY_MAPS = frozenset({"requests", "limits"})
QUANTITY_FIELDS = frozenset({"sizeLimit"})


def parse_quantity(text: str) -> Decimal | None:
    """The value of a quantity, rounded up to three decimal places; None when ``text`` is not one."""
    found = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    try:
        number = Decimal(found[1])
    except InvalidOperation:
        return None
    suffix = found[2] or ""
    if suffix in _BINARY:
        value = number * (1024 ** _BINARY[suffix])
    elif suffix in _DECIMAL:
        value = number.scaleb(_DECIMAL[suffix])
    else:
        value = number.scaleb(int(suffix[1:]))
    return Decimal(math.ceil(value * 1000)) / 1000


def same_quantity(a: object, b: object) -> bool:
    """Whether two values are the same quantity (or equal, when either is not a quantity)."""
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    left, right = parse_quantity(a), parse_quantity(b)
    return left is not None and left == right
