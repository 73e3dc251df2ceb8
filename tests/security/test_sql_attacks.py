"""Hostile SQL through /v0/sql, endpoints' `q=` and new pipe nodes: refused with a 4xx that says why,
and nothing changed (see hostile.py)."""

from __future__ import annotations

import pytest
from cases_sql import (
    CROSS_WORKSPACE,
    CROSS_WORKSPACE_INERT,
    RESOURCE_BOMBS,
    RESOURCE_BOMBS_XFAIL,
    STATEMENTS,
    SYSTEM,
    TABLE_FUNCTIONS,
)
from hostile import check_inert, check_refused, params


@pytest.mark.parametrize("case", params(CROSS_WORKSPACE))
def test_cross_workspace(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(CROSS_WORKSPACE_INERT))
def test_cross_workspace_inert(world, case):
    check_inert(world, case)


@pytest.mark.parametrize("case", params(SYSTEM))
def test_system_tables_and_server_state(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(TABLE_FUNCTIONS))
def test_file_network_and_process_functions(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(STATEMENTS))
def test_statements_other_than_one_select(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(RESOURCE_BOMBS, xfail=RESOURCE_BOMBS_XFAIL))
def test_resource_bombs(world, case):
    check_refused(world, case)
