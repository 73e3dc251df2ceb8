"""The project config file `.tinyb`, as the tb CLI writes it (JSON, indent 4, sorted keys), so a project
folder works with both `tb` and `tody`::

    {"host": "http://127.0.0.1:7181", "id": "<workspace id>", "name": "<workspace name>",
     "scope": "admin", "token": "p.…", "tokens": {"http://127.0.0.1:7181": "p.…"},
     "user_email": "…", "user_id": "…", "version": "…"}

The project's file is `.tinyb` in the current directory or the nearest parent that has one. It holds a
token, so tody writes it readable by its owner only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tody.cli.config import read_object, write_private

FILENAME = ".tinyb"


def find(start: Path | None = None) -> Path | None:
    """The `.tinyb` of `start` (default: the current directory) or of its nearest parent; None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / FILENAME
        if candidate.is_file():
            return candidate
    return None


def read(path: Path) -> dict[str, Any]:
    return read_object(path, "project config")


def load(start: Path | None = None) -> tuple[Path | None, dict[str, Any]]:
    """(path, contents) of the nearest `.tinyb`; (None, {}) when there is none."""
    path = find(start)
    return (path, read(path)) if path is not None else (None, {})


def host_of(config: dict[str, Any]) -> str | None:
    host = config.get("host")
    return host.rstrip("/") if isinstance(host, str) and host.strip() else None


def token_for(config: dict[str, Any], host: str) -> str | None:
    """The project's token for `host`: its entry in `tokens`, else `token` when the file is for that host
    (or names no host)."""
    host = host.rstrip("/")
    tokens = config.get("tokens")
    if isinstance(tokens, dict):
        for key, value in tokens.items():
            if isinstance(key, str) and key.rstrip("/") == host and isinstance(value, str) and value:
                return value
    token = config.get("token")
    own = host_of(config)
    if isinstance(token, str) and token and (own is None or own == host):
        return token
    return None


def write(path: Path, config: dict[str, Any]) -> Path:
    """Write `.tinyb` atomically, readable by its owner only (tb's own layout: indent 4, sorted keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_private(path, (json.dumps(config, indent=4, sort_keys=True) + "\n").encode())


def authenticated(config: dict[str, Any], host: str, token: str, workspace: dict[str, Any]) -> dict[str, Any]:
    """`config` updated as `tb auth` does after a successful `GET /v0/workspace`."""
    from tody import __version__

    host = host.rstrip("/")
    out = dict(config)
    tokens = dict(out.get("tokens") or {}) if isinstance(out.get("tokens"), dict) else {}
    tokens[host] = token
    out.update(host=host, token=token, tokens=tokens, version=__version__)
    for key in ("id", "name", "scope", "user_email", "user_id"):
        if workspace.get(key) is not None:
            out[key] = workspace[key]
    return out
