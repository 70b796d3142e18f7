"""The operator compares resource quantities by value, as the API server rewrites them."""

from __future__ import annotations

import pytest

from livestrat.kube_emulator.quantities import DOCUMENTED_EXAMPLES
from strategy_operator.quantities import parse_quantity, same_quantity


@pytest.mark.parametrize(("written", "stored"), DOCUMENTED_EXAMPLES)
def test_a_quantity_and_its_canonical_form_are_the_same_quantity(written, stored):
    assert same_quantity(written, stored)


def test_different_quantities_and_non_quantities_differ():
    assert not same_quantity("500m", "1")
    assert not same_quantity("1Gi", "1G")
    assert not same_quantity("abc", "abc ")
    assert same_quantity("abc", "abc")
    assert parse_quantity("1.5.5") is None and parse_quantity("Gi") is None
