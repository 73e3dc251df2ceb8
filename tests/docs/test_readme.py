"""The README documents what the code does: these fail when the two drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from tody.server.app import ROUTES
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
