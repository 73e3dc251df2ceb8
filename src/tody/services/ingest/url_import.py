"""Imports from a URL (`POST /v0/datasources` with `url=`): a job (kind `import`) downloads the file
to the spool chunk by chunk, then imports it exactly like an uploaded file (imports.py).

The request is checked before the job is queued (mode, name, scopes, format, replace_condition, the
URL itself), so a mistake is a 4xx at once rather than a failed job later.

SSRF: a token that may append rows must not turn the server into a proxy to its own network. Unless
`import_allow_private_urls` is on, a URL whose host resolves to a loopback, private, link-local,
reserved or multicast address is refused (400) when the request arrives, and again on every connection
the download opens (redirects included): the check runs on the addresses the socket actually connects
to, so a DNS answer that changes between the two (rebinding) is caught too. Proxies from the
environment are not used, since a proxy would connect on our behalf to an address we never checked.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore
import httpx

from tody.catalog.store import JobRecord
from tody.services.errors import BadRequest, ServiceError
from tody.services.ingest.imports import ImportService, response
from tody.services.jobs import JobCancelled, JobContext, JobService
from tody.services.tokens import Principal
from tody.settings import Config

CHECKPOINT_EVERY = 0.5  # seconds between progress updates (each one is a catalog write)
DOWNLOAD_SHARE = 0.8  # of the job's progress; the import is the rest


class DownloadError(ServiceError):
    status = 400


class PrivateAddress(BadRequest):
    pass


@dataclass(frozen=True)
class UrlLimits:
    allow_private: bool = False
    max_bytes: int = 10_000_000_000
    timeout: float = 60.0
    max_redirects: int = 5

    @classmethod
    def from_config(cls, config: Config) -> UrlLimits:
        return cls(
            allow_private=config.import_allow_private_urls,
            max_bytes=config.import_max_url_bytes,
            timeout=config.import_url_timeout,
            max_redirects=config.import_url_max_redirects,
        )


def refused_address(ip: str) -> bool:
    """True for any address that is not on the public internet."""
    addr = ipaddress.ip_address(ip.split("%")[0])  # drop an IPv6 zone id
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def _refusal(host: str, ip: str) -> PrivateAddress:
    return PrivateAddress(
        f"The URL's host '{host}' is {ip}, a loopback, private or reserved address: imports from such "
        "addresses are refused (a server administrator can allow them with TODY_IMPORT_ALLOW_PRIVATE_URLS=1)"
    )


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, limits: UrlLimits) -> str:
    """The URL if it may be imported from, else a 400 saying why."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest(f"'url' must be an http:// or https:// URL, got '{redact(url)[:200]}'")
    if not parts.hostname:
        raise BadRequest(f"'url' has no host: '{redact(url)[:200]}'")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise BadRequest(f"'url' has an invalid port: '{redact(url)[:200]}'") from None
    if not limits.allow_private:
        try:
            addresses = _resolve(parts.hostname, port)
        except OSError:
            raise BadRequest(f"Cannot resolve the host of the URL '{parts.hostname}'") from None
        for ip in addresses:
            if refused_address(ip):
                raise _refusal(parts.hostname, ip)
    return url.strip()


def redact(url: str) -> str:
    """The URL without a user name or password, as jobs and messages show it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def filename_of(url: str) -> str | None:
    """The last path segment (`events.ndjson.gz`): the format comes from its extension."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or None


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass `refused_address`, whatever the host resolves to now."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = _resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve '{host}': {exc}") from None
        for ip in addresses:
            if refused_address(ip):
                raise _refusal(host, ip)
        failure: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for '{host}'")


def _client(limits: UrlLimits) -> httpx.Client:
    transport = httpx.HTTPTransport(trust_env=False)
    if not limits.allow_private:
        # httpx has no parameter for httpcore's network backend: give its transport a pool built
        # the same way (TLS context, HTTP/1.1) with the checking backend.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_CheckedBackend(),
        )
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        timeout=httpx.Timeout(limits.timeout),
        headers={"User-Agent": "tody-import"},
    )


def download(
    url: str, dest: Path, limits: UrlLimits, on_progress: Callable[[int, int | None], None] | None = None
) -> int:
    """Stream `url` into `dest` (never whole in memory). Returns the bytes written. `on_progress(done,
    total)` runs after each chunk and may raise to stop. Failures raise DownloadError (or
    PrivateAddress) with a message naming the URL."""
    shown = redact(url)
    written = 0
    try:
        with _client(limits) as client, client.stream("GET", url) as res:
            if res.status_code >= 400:
                raise DownloadError(
                    f"Could not download {shown}: the server answered HTTP {res.status_code} "
                    f"{res.reason_phrase}".rstrip()
                )
            total = _content_length(res)
            if total is not None and total > limits.max_bytes:
                raise DownloadError(_too_large(shown, limits.max_bytes))
            with dest.open("wb") as out:
                # iter_bytes undoes a Content-Encoding, so the cap also bounds what a small gzip expands
                # to; without a chunk size it hands over what arrives, so a cancel is seen on slow links
                for chunk in res.iter_bytes():
                    written += len(chunk)
                    if written > limits.max_bytes:
                        raise DownloadError(_too_large(shown, limits.max_bytes))
                    out.write(chunk)
                    if on_progress is not None:
                        on_progress(written, total)
    except httpx.TooManyRedirects:
        raise DownloadError(
            f"Could not download {shown}: more than {limits.max_redirects} redirects"
        ) from None
    except httpx.TimeoutException:
        raise DownloadError(
            f"Could not download {shown}: no answer within {limits.timeout:g} s (timeout)"
        ) from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"Could not download {shown}: {_reason(exc)}") from None
    return written


def _content_length(res: httpx.Response) -> int | None:
    try:
        return int(res.headers["content-length"]) if "content-encoding" not in res.headers else None
    except (KeyError, ValueError):
        return None


def _too_large(shown: str, limit: int) -> str:
    return f"Could not download {shown}: the file is larger than the server's limit of {limit} bytes"


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text})"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"a redirect led to an unsupported URL ({text})"
    return text


def submit(
    imports: ImportService,
    jobs: JobService,
    principal: Principal,
    name: str,
    mode: str,
    url: str,
    params: Mapping[str, str],
    limits: UrlLimits,
    *,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[JobRecord, str]:
    """Check the request, then queue the import job. Returns the job and the import id."""
    url = check_url(url, limits)
    filename = filename_of(url)
    plan = imports.prepare(principal, name, mode, params, filename)
    import_id = uuid.uuid4().hex
    shown = redact(url)
    params = {k: v for k, v in params.items() if k not in ("token", "url")}
    rec = plan.rec
    datasources = imports.datasources

    def run(ctx: JobContext) -> dict[str, Any]:
        path = imports.spool_path(import_id)
        started = time.perf_counter()
        last = time.monotonic()

        def progress(done: int, total: int | None) -> None:
            nonlocal last
            if ctx.cancelled:
                raise JobCancelled()
            if time.monotonic() - last >= CHECKPOINT_EVERY:
                last = time.monotonic()
                ctx.checkpoint(DOWNLOAD_SHARE * done / total if total else None, bytes_downloaded=done)

        try:
            try:
                size = download(url, path, limits, progress)
            except ServiceError as exc:
                if rec is not None:  # the ops log shows the failed import next to the others
                    datasources.log_operation(
                        principal.workspace,
                        rec,
                        "partial_replace" if plan.condition else mode,
                        started,
                        import_id=import_id,
                        job_id=ctx.job_id,
                        error=exc.message,
                        options={"url": shown},
                    )
                raise
            ctx.checkpoint(DOWNLOAD_SHARE, bytes_downloaded=size)
            out = imports.run(principal, name, mode, path, params, filename, import_id, job_id=ctx.job_id)
        finally:
            path.unlink(missing_ok=True)
        result = out["result"]
        if on_rows is not None:
            on_rows(result.rows_stored)
        stats = datasources.statistics(principal.workspace)
        body = response(
            datasources.describe(out["datasource"], stats), result, import_id, out["discarded_rows"]
        )
        if body["error"]:  # nothing could be imported: the job failed, its counts still show why
            ctx.checkpoint(**{k: v for k, v in body.items() if k not in ("error", "errors")})
            raise ServiceError(body["error"])
        return body

    job_params: dict[str, Any] = {
        "url": shown,
        "mode": mode,
        "format": plan.fmt,
        "import_id": import_id,
        "datasource": {"id": rec.id, "name": rec.name} if rec else {"name": name},
    }
    if plan.condition:
        job_params["replace_condition"] = params.get("replace_condition")
    job = jobs.submit(principal, "import", run, params=job_params, datasource_id=rec.id if rec else None)
    return job, import_id
