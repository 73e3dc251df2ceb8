"""The README documents what the code does: these fail when the two drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from tody.server.app import ROUTES, needs_table
from tody.settings import markdown_table

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_configuration_table_matches_settings():
    block = re.search(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", README, re.S)
    assert block, "README lost its settings table markers"
    assert block.group(1) == markdown_table(), "run `python -m tody.settings` and paste the table"


def test_every_route_is_in_the_readme():
    documented = README.replace("\\|", "|")
    for route in ROUTES:
        path = route.path.removesuffix("/")
        if path.endswith("/v0/user/workspaces"):
            continue
        base = path.split("/{")[0] if path.count("{") else path
        assert base in documented, f"{route.path} is not documented in the README"


def test_the_two_commands_are_documented():
    assert "make serve" in README and "make test" in README


def test_route_needs_table_matches_the_routes():
    block = re.search(r"<!-- needs-table:start -->\n(.*?)\n<!-- needs-table:end -->", README, re.S)
    assert block, "README lost its needs table markers"
    assert block.group(1) == needs_table(), "run `python -m tody.server.app` and paste the table"


def test_every_api_route_declares_what_its_token_needs():
    api_routes = [r for r in ROUTES if r.path.startswith(("/v0/", "/v1/"))]
    assert api_routes and all(getattr(r, "needs", None) is not None for r in api_routes)
