"""The composition root: one data directory opened by one process.

`Platform.open(config)` takes the data directory lock, opens the catalog (migrating it), the server
key and the engine, and makes sure a default organization, workspace and admin token exist.
The HTTP server, the CLI's local commands and the tests all start here.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from tody.catalog.store import Catalog
from tody.engine.base import Engine
from tody.services import stats
from tody.services.alter import DatasourceAlter
from tody.services.compiler import Compiler
from tody.services.copies import CopyService
from tody.services.datasources import DatasourceService
from tody.services.endpoints import EndpointService
from tody.services.errors import ServiceError
from tody.services.ingest.events import EventsService
from tody.services.ingest.imports import ImportService
from tody.services.jobs import JobService
from tody.services.jwt_tokens import JwtService
from tody.services.materialized import MaterializedViews
from tody.services.members import MemberService
from tody.services.openapi import OpenAPIService
from tody.services.organizations import OrganizationService
from tody.services.pipes import PipeService
from tody.services.query import QueryService
from tody.services.ratelimit import RateLimiter, RequestLimits
from tody.services.scheduler import CopyScheduler
from tody.services.secrets import ServerKey
from tody.services.sharing import SharingService
from tody.services.tokens import TokenService
from tody.services.users import UserService
from tody.services.workspaces import WorkspaceLifecycle, WorkspaceService
from tody.settings import Config

LOCK_FILE = "tody.lock"


class DataDirInUse(ServiceError):
    status = 503


class DataDirLock:
    """An exclusive lock on the data directory, held for the life of the process."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"Another tody server (pid {holder}) is already using the data directory {self.path.parent}. "
                "Stop it first, or start this one with another --data-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class Platform:
    config: Config
    catalog: Catalog
    engine: Engine
    key: ServerKey
    tokens: TokenService
    workspaces: WorkspaceService
    datasources: DatasourceService
    query: QueryService
    compiler: Compiler
    pipes: PipeService
    endpoints: EndpointService
    openapi: OpenAPIService
    stats: stats.StatsWriter
    jobs: JobService
    imports: ImportService
    events: EventsService
    events_limiter: RateLimiter
    limits: RequestLimits
    users: UserService
    members: MemberService
    sharing: SharingService
    organizations: OrganizationService
    alter: DatasourceAlter
    materialized: MaterializedViews
    copies: CopyService
    scheduler: CopyScheduler
    lock: DataDirLock
    lifecycle: WorkspaceLifecycle = field(init=False)  # it works across services: made with the platform
    first_user: tuple[str, str] | None = field(init=False, default=None)  # (token, password) when just made

    @classmethod
    def open(cls, config: Config, engine: Engine | None = None) -> Platform:
        """Open the data directory. Tests may pass an already open `engine` (one per process)."""
        data_dir = config.data_path
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = DataDirLock(data_dir)
        lock.acquire()
        try:
            key = ServerKey.load_or_create(data_dir)
            catalog = Catalog.open(data_dir / "catalog.db")
            if engine is None:
                # chdb loads only when a server opens, never at import (see engine/chdb.py).
                from tody.engine.chdb import ChdbEngine

                engine = ChdbEngine(
                    data_dir / "engine",
                    limits=config.query_limits(),
                    pool_size=config.query_pool_size,
                    max_server_memory_ratio=config.max_server_memory_ratio,
                )
        except BaseException:
            lock.release()
            raise
        tokens = TokenService(catalog, key)
        tokens.jwt = JwtService(tokens)
        compiler = Compiler(catalog, engine, max_sql_bytes=config.max_sql_bytes)
        stats.install(engine, compiler)
        writer = stats.StatsWriter(engine)
        datasources = DatasourceService(catalog, engine, writer)
        query = QueryService(catalog, engine, compiler)
        pipes = PipeService(catalog, compiler, datasources)
        job_settings = {"max_memory_usage": config.max_memory_usage}
        if config.job_max_execution_time:
            job_settings["max_execution_time"] = config.job_max_execution_time
        jobs = JobService(catalog, query_settings=job_settings)
        jobs.finish_hooks.append(lambda rec: stats.log_job(writer, catalog, rec))
        jobs.fail_unfinished()
        materialized = MaterializedViews(catalog, engine, compiler, datasources, pipes, jobs)
        copies = CopyService(catalog, engine, compiler, datasources, pipes, jobs)
        users = UserService(catalog, tokens, allow_signup=config.allow_signup)
        members = MemberService(catalog, tokens, users)
        sharing = SharingService(catalog, members, pipes)
        datasources.dependency_checks.append(sharing.dependents)
        datasources.create_hooks.append(sharing.on_create)
        try:
            events = EventsService(
                catalog,
                engine,
                datasources,
                data_dir,
                flush_interval=config.events_flush_interval,
                flush_bytes=config.events_flush_bytes,
                backlog_bytes=config.events_backlog_bytes,
            )
            events.recover()  # acknowledged events a crash left unwritten go in before anything else
        except BaseException:
            writer.close()
            lock.release()
            raise
        platform = cls(
            config=config,
            catalog=catalog,
            engine=engine,
            key=key,
            tokens=tokens,
            workspaces=WorkspaceService(catalog, engine, tokens),
            datasources=datasources,
            query=query,
            compiler=compiler,
            pipes=pipes,
            endpoints=EndpointService(pipes, compiler, query),
            openapi=OpenAPIService(pipes, compiler, engine),
            stats=writer,
            jobs=jobs,
            imports=ImportService(engine, datasources, data_dir / "jobs" / "spool"),
            events=events,
            events_limiter=RateLimiter(config.events_rate_limit),
            limits=RequestLimits(config.token_rate_limit, config.endpoint_rate_limit),
            users=users,
            members=members,
            sharing=sharing,
            organizations=OrganizationService(catalog, users),
            alter=DatasourceAlter(datasources),
            materialized=materialized,
            copies=copies,
            scheduler=CopyScheduler(copies),
            lock=lock,
        )
        platform.lifecycle = WorkspaceLifecycle(platform)
        platform.workspaces.ensure_default(config.admin_token or None)
        platform.first_user = platform.lifecycle.ensure_first_user(
            config.admin_user_email, config.admin_user_token or None, None
        )
        platform.materialized.reconcile()  # views a populate left uncreated when the server died
        platform.scheduler.start()
        return platform

    def close(self) -> None:
        try:
            self.scheduler.close()  # before the job pool stops taking jobs
            self.events.close()
            self.jobs.close()
            self.stats.close()
            self.engine.close()
            self.catalog.close()
        finally:
            self.lock.release()
