"""Resource names: letters, digits and underscores, not starting with a digit, not reserved."""

from __future__ import annotations

import re

from tody.services.errors import BadRequest

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LENGTH = 128
RESERVED = frozenset({"tinybird", "system", "information_schema", "organization", "default", "_"})


def validate_name(name: str | None, kind: str) -> str:
    """Return `name` when valid for a `kind` (e.g. "Data Source"), else raise 400 saying why."""
    if not name:
        raise BadRequest(f"{kind} name is required")
    if len(name) > MAX_LENGTH:
        raise BadRequest(f"{kind} name is longer than {MAX_LENGTH} characters")
    if not _NAME.fullmatch(name):
        shown = name.encode("unicode_escape").decode()[:80]
        raise BadRequest(
            f"Invalid {kind} name '{shown}': use letters, digits and underscores, not starting with a digit"
        )
    if name.lower() in RESERVED:
        raise BadRequest(f"Invalid {kind} name '{name}': it is a reserved word")
    return name
