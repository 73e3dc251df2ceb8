from __future__ import annotations

import pytest

from tody.services.errors import BadRequest, Forbidden, Unauthorized
from tody.services.names import validate_name
from tody.services.tokens import Scope


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ADMIN", Scope("ADMIN")),
        ("admin", Scope("ADMIN")),
        ("TOKENS", Scope("TOKENS")),
        ("DATASOURCES:CREATE", Scope("DATASOURCES:CREATE")),
        ("DATASOURCE:CREATE", Scope("DATASOURCES:CREATE")),
        ("DATASOURCES:APPEND:events", Scope("DATASOURCES:APPEND", "events")),
        ("DATASOURCES:READ:events", Scope("DATASOURCES:READ", "events")),
        ("DATASOURCES:READ:events:country = 'ES'", Scope("DATASOURCES:READ", "events", "country = 'ES'")),
        (
            "DATASOURCES:READ:events:a::String = 'x:y'",
            Scope("DATASOURCES:READ", "events", "a::String = 'x:y'"),
        ),
        ("PIPE:READ:top", Scope("PIPES:READ", "top")),
        ("PIPES:DROP:top", Scope("PIPES:DROP", "top")),
        ("WORKSPACE:READ_ALL", Scope("WORKSPACE:READ_ALL")),
    ],
)
def test_scope_parsing(text, expected):
    assert Scope.parse(text) == expected
    assert Scope.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["", "NOPE", "DATASOURCES:READ", "DATASOURCES:READ:", "DATASOURCES:APPEND:e:x > 1"]
)
def test_bad_scopes_are_400(text):
    with pytest.raises(BadRequest):
        Scope.parse(text)


def test_authenticate(platform, workspace, workspace_token):
    principal = platform.tokens.authenticate(workspace_token)
    assert principal.workspace.id == workspace.id and principal.is_admin
    with pytest.raises(Unauthorized):
        platform.tokens.authenticate(None)
    with pytest.raises(Forbidden):
        platform.tokens.authenticate(workspace_token + "x")


def test_principal_require_names_the_missing_scope(platform, workspace):
    _, value = platform.tokens.create(workspace, "r", [Scope.parse("DATASOURCES:READ:events:a > 1")])
    principal = platform.tokens.authenticate(value)
    assert principal.can_read_datasource("events") and not principal.can_read_datasource("other")
    assert principal.datasource_filter("events") == "(a > 1)"
    with pytest.raises(Forbidden, match="DATASOURCES:CREATE"):
        principal.require("DATASOURCES:CREATE")


@pytest.mark.parametrize("name", ["events", "_x", "a1", "A_b_9"])
def test_valid_names(name):
    assert validate_name(name, "Data Source") == name


@pytest.mark.parametrize(
    "name", ["", "1a", "a-b", "a b", "a.b", "../x", "a\x00", "é", "system", "TINYBIRD", "x" * 200]
)
def test_invalid_names(name):
    with pytest.raises(BadRequest):
        validate_name(name, "Data Source")
