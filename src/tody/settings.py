"""Every server setting, declared once: name, type, default, environment variable and help.

The CLI flags of `tody serve`, the README configuration table and the server all read this list,
so a setting is added here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tody.engine.base import QueryLimits


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    flag: bool = False  # also a `tody serve --flag`
    env_name: str | None = None  # when TODY_<NAME> would mean something else to the CLI

    @property
    def env(self) -> str:
        return self.env_name or "TODY_" + self.name.upper()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> Any:
        if self.type is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        return self.type(raw)


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", str, "./tody-data", "Data directory: catalog, engine files, server key.", flag=True),
    # TODY_HOST is the server URL for the CLI (as TB_HOST is for tb), so the interface has its own name
    Setting("host", str, "127.0.0.1", "Interface to listen on.", flag=True, env_name="TODY_LISTEN_HOST"),
    Setting("port", int, 7181, "Port to listen on (7181 is Tinybird Local's).", flag=True),
    Setting(
        "admin_token",
        str,
        "",
        "Fixes the default workspace's admin token at first start (random when empty).",
        flag=True,
    ),
    Setting(
        "admin_user_token",
        str,
        "",
        "Fixes the first user's user token at first start (random and printed when empty).",
        flag=True,
    ),
    Setting("admin_user_email", str, "admin@localhost", "Email of the first user, made at first start."),
    Setting(
        "allow_signup", bool, False, "Let anyone create a user with POST /v0/users (off: org admins do)."
    ),
    Setting("log_level", str, "info", "Server log level (debug, info, warning, error).", flag=True),
    Setting("query_pool_size", int, 0, "Locked-down engine connections for queries (0 = 2 x cores)."),
    Setting("max_execution_time", float, 10.0, "Seconds a query may run before it is stopped (408)."),
    Setting("max_memory_usage", int, 4_000_000_000, "Bytes of memory one query may use."),
    Setting(
        "max_result_bytes",
        int,
        100_000_000,
        "Bytes one query may return (before output format); a formatted answer stops at 4x this (400).",
    ),
    Setting("max_result_rows", int, 0, "Rows one query may return (0 = no limit)."),
    Setting("max_rows_to_read", int, 10_000_000_000, "Rows one query may scan."),
    Setting("max_threads", int, 0, "Threads per query (0 = engine default, all cores)."),
    Setting("max_sql_bytes", int, 256_000, "Longest SQL text accepted (bytes)."),
    Setting(
        "job_max_execution_time",
        float,
        3600.0,
        "Seconds a copy or populate job's query may run before the job ends as an error (0 = no limit).",
    ),
    Setting(
        "max_body_bytes",
        int,
        10_485_760,
        "Largest request body that is not a data upload (SQL, JSON, datafiles); over it: 413.",
    ),
    Setting("max_server_memory_ratio", float, 0.7, "Share of RAM the engine may use in total."),
    Setting(
        "events_rate_limit",
        int,
        5000,
        "Events API requests per second per data source (0 = no limit); over it: 429 and Retry-After.",
    ),
    Setting(
        "token_rate_limit",
        int,
        0,
        "Requests per second one token may make (0 = no limit); a workspace may set its own, a JWT its "
        "limits.rps.",
    ),
    Setting(
        "endpoint_rate_limit",
        int,
        0,
        "Requests per second one API endpoint answers (0 = no limit); a workspace may set its own.",
    ),
    Setting(
        "events_max_body_bytes", int, 10_485_760, "Largest Events API request body (bytes), before gzip."
    ),
    Setting(
        "events_flush_interval", float, 0.5, "Longest time events wait before their batch is written (s)."
    ),
    Setting(
        "events_flush_bytes",
        int,
        16_777_216,
        "A data source's batch is written once it holds this many bytes.",
    ),
    Setting(
        "events_backlog_bytes",
        int,
        1_073_741_824,
        "Bytes of events waiting to be written before the Events API answers 503 (engine too slow).",
    ),
    Setting(
        "import_allow_private_urls",
        bool,
        False,
        "Allow imports from URLs whose host is a loopback, private, link-local or reserved address "
        "(off by default: a token holder could otherwise make the server fetch from its own network).",
    ),
    Setting("import_max_url_bytes", int, 10_000_000_000, "Largest file an import from a URL may download."),
    Setting("import_url_timeout", float, 60.0, "Seconds an import from a URL waits to connect or for data."),
    Setting("import_url_max_redirects", int, 5, "Redirects an import from a URL may follow."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    return _BY_NAME[name]


@dataclass(frozen=True)
class Config:
    """Resolved settings: defaults, then environment, then explicit values (CLI flags)."""

    data_dir: str = "./tody-data"
    host: str = "127.0.0.1"
    port: int = 7181
    admin_token: str = ""
    admin_user_token: str = ""
    admin_user_email: str = "admin@localhost"
    allow_signup: bool = False
    log_level: str = "info"
    query_pool_size: int = 0
    max_execution_time: float = 10.0
    max_memory_usage: int = 4_000_000_000
    max_result_bytes: int = 100_000_000
    max_result_rows: int = 0
    max_rows_to_read: int = 10_000_000_000
    max_threads: int = 0
    max_sql_bytes: int = 256_000
    job_max_execution_time: float = 3600.0
    max_body_bytes: int = 10_485_760
    max_server_memory_ratio: float = 0.7
    events_rate_limit: int = 5000
    token_rate_limit: int = 0
    endpoint_rate_limit: int = 0
    events_max_body_bytes: int = 10_485_760
    events_flush_interval: float = 0.5
    events_flush_bytes: int = 16_777_216
    events_backlog_bytes: int = 1_073_741_824
    import_allow_private_urls: bool = False
    import_max_url_bytes: int = 10_000_000_000
    import_url_timeout: float = 60.0
    import_url_max_redirects: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, **explicit: Any) -> Config:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            value = s.default
            if s.env in env and env[s.env] != "":
                value = s.parse(env[s.env])
            if explicit.get(s.name) is not None:
                value = explicit[s.name]
            values[s.name] = value
        return cls(**values)

    def query_limits(self) -> QueryLimits:
        return QueryLimits(
            max_execution_time=self.max_execution_time,
            max_memory_usage=self.max_memory_usage,
            max_result_bytes=self.max_result_bytes,
            max_result_rows=self.max_result_rows,
            max_rows_to_read=self.max_rows_to_read,
            max_threads=self.max_threads,
        )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"} or self.host.startswith("127.")


assert {f.name for f in fields(Config)} - {"extra"} == set(_BY_NAME), "Config and SETTINGS must agree"


def markdown_table() -> str:
    """The README's configuration table (a test keeps the README in step with this list)."""
    lines = [
        "| setting | env | flag | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        flag = f"`{s.option}`" if s.flag else ""
        lines.append(f"| {s.name} | `{s.env}` | {flag} | `{s.default}` | {s.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
