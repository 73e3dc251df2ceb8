"""Tokens used beyond their scopes: row filters that must hold, and scopes that must not stretch."""

from __future__ import annotations

import pytest
from cases_access import ROW_FILTER_HOLDS, ROW_FILTER_REFUSED, SCOPE_ESCALATION
from hostile import check_inert, check_refused, params


@pytest.mark.parametrize("case", params(ROW_FILTER_REFUSED))
def test_row_filter_bypass_refused(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(ROW_FILTER_HOLDS))
def test_row_filter_holds(world, case):
    check_inert(world, case)


@pytest.mark.parametrize("case", params(SCOPE_ESCALATION))
def test_scope_escalation(world, case):
    check_refused(world, case)
