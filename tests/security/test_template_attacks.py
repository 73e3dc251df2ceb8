"""Hostile templates (escapes, exhaustion) and hostile values for every typed template function."""

from __future__ import annotations

import pytest
from cases_templates import INJECTION_INERT, PARAM_INJECTION, TEMPLATE_ESCAPES
from hostile import check_inert, check_refused, params


@pytest.mark.parametrize("case", params(TEMPLATE_ESCAPES))
def test_template_escapes(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(PARAM_INJECTION))
def test_param_injection_refused(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(INJECTION_INERT))
def test_injection_is_inert(world, case):
    check_inert(world, case)
