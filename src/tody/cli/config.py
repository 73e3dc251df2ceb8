"""The CLI's own config file: the current host and, per host, the token, the user token and the
workspace they belong to. `tody workspace use NAME` writes it; every command reads it after its flags
and environment variables.

The file is `$TODY_CONFIG`, else `$XDG_CONFIG_HOME/tody/config.json`, else `~/.config/tody/config.json`;
it holds secrets, so it is written 0600 (its directory 0700)::

    {"host": "http://127.0.0.1:7181",
     "hosts": {"http://127.0.0.1:7181": {"token": "p.…", "user_token": "p.…",
                                         "workspace": "sales", "workspace_id": "…"}}}
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click
import orjson


def config_path() -> Path:
    if os.environ.get("TODY_CONFIG"):
        return Path(os.environ["TODY_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tody" / "config.json"


def load() -> dict[str, Any]:
    path = config_path()
    return read_object(path, "CLI config") if path.exists() else {}


def read_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object file (a config); a clear error when it cannot be read or is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"Cannot read the {what} {path}: {exc.strerror}") from None
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise click.ClickException(f"The {what} {path} is not valid JSON: fix or remove it") from None
    if not isinstance(body, dict):
        raise click.ClickException(f"The {what} {path} is not a JSON object: fix or remove it")
    return body


def saved_for(config: dict[str, Any], host: str) -> dict[str, Any]:
    entry = (config.get("hosts") or {}).get(host.rstrip("/"))
    return entry if isinstance(entry, dict) else {}


def save(config: dict[str, Any]) -> Path:
    """Write the config atomically, readable by its owner only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_private(
        path, orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


def write_private(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` in one step (a temporary file renamed over it), mode 0600: configs
    hold tokens."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remember(host: str, *, current: bool = True, **values: Any) -> Path:
    """Store `values` for `host` (a None value removes the key); `current` makes it the default host."""
    host = host.rstrip("/")
    config = load()
    hosts = config.setdefault("hosts", {})
    entry = hosts.setdefault(host, {})
    for key, value in values.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    if current:
        config["host"] = host
    return save(config)
