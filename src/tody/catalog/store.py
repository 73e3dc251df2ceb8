"""The catalog: metadata of organizations, workspaces, tokens and data sources.

SQLite by default (one file in the data directory). Reads used on every request (token lookup,
a workspace's data sources) are served from memory; the catalog refreshes that memory itself on
every write, which is sound because one server process owns a data directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from tody.catalog import tables as t

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class OrganizationRecord:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class WorkspaceRecord:
    id: str
    organization_id: str
    name: str
    database: str
    created_at: datetime
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    id: str
    email: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True)
class MemberRecord:
    workspace_id: str
    user_id: str
    role: str  # admin | guest | viewer
    created_at: datetime


@dataclass(frozen=True)
class ShareRecord:
    datasource_id: str
    workspace_id: str  # the destination
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: str
    workspace_id: str | None  # None for a user token
    name: str
    description: str
    value_hash: str
    value_encrypted: str
    scopes: list[dict[str, Any]]
    origin: str
    created_at: datetime
    updated_at: datetime
    user_id: str | None = None  # a user token, or a member's personal workspace token


@dataclass(frozen=True)
class DatasourceRecord:
    id: str
    workspace_id: str
    name: str
    description: str
    columns: list[dict[str, Any]]
    engine: dict[str, Any]
    indexes: list[dict[str, Any]]
    tags: dict[str, Any]
    format: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NodeRecord:
    id: str
    pipe_id: str
    position: int
    name: str
    sql: str
    description: str
    type: str
    options: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PipeRecord:
    id: str
    workspace_id: str
    name: str
    description: str
    endpoint_node_id: str | None
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    nodes: tuple[NodeRecord, ...] = ()

    def node(self, name_or_id: str) -> NodeRecord | None:
        return next((n for n in self.nodes if name_or_id in (n.name, n.id)), None)

    @property
    def endpoint_node(self) -> NodeRecord | None:
        return next((n for n in self.nodes if n.id == self.endpoint_node_id), None)


@dataclass(frozen=True)
class JobRecord:
    id: str
    workspace_id: str
    kind: str
    status: str
    datasource_id: str | None
    pipe_id: str | None
    progress: float
    params: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None


@dataclass(frozen=True)
class CopyScheduleRecord:
    pipe_id: str
    workspace_id: str
    cron: str
    status: str  # running | paused
    since: datetime
    last_run_at: datetime | None
    last_job_id: str | None
    updated_at: datetime


@dataclass
class _Memory:
    tokens_by_hash: dict[str, TokenRecord] = field(default_factory=dict)
    workspaces: dict[str, WorkspaceRecord] = field(default_factory=dict)
    datasources: dict[str, dict[str, DatasourceRecord]] = field(default_factory=dict)  # ws -> name -> rec
    datasources_by_id: dict[str, DatasourceRecord] = field(default_factory=dict)
    pipes: dict[str, dict[str, PipeRecord]] = field(default_factory=dict)  # ws -> name -> rec
    users: dict[str, UserRecord] = field(default_factory=dict)
    members: dict[tuple[str, str], MemberRecord] = field(default_factory=dict)  # (ws, user) -> rec
    org_admins: set[tuple[str, str]] = field(default_factory=set)  # (organization, user)
    shares: dict[str, list[ShareRecord]] = field(default_factory=dict)  # destination ws -> shares


class Catalog:
    def __init__(self, url: str):
        self.url = url
        connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
        self.db = sa.create_engine(url, connect_args=connect_args)
        if url.startswith("sqlite"):
            sa.event.listen(self.db, "connect", _sqlite_pragmas)
        self._write_lock = threading.RLock()
        self._memory = _Memory()
        # Bumped on every write; callers key their caches (compiled SQL, …) on it.
        self.generation = 0

    @classmethod
    def open(cls, path: Path) -> Catalog:
        catalog = cls(f"sqlite:///{path}")
        catalog.migrate()
        catalog.reload()
        return catalog

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.db.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.db.dispose()

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One transaction of writes; memory is refreshed once it commits."""
        with self._write_lock:
            with self.db.begin() as conn:
                yield conn
            self.reload()

    def reload(self) -> None:
        memory = _Memory()
        with self.db.connect() as conn:
            for row in conn.execute(sa.select(t.workspaces)):
                memory.workspaces[row.id] = WorkspaceRecord(**row._mapping)
                memory.datasources[row.id] = {}
            for row in conn.execute(sa.select(t.tokens)):
                memory.tokens_by_hash[row.value_hash] = TokenRecord(**row._mapping)
            for row in conn.execute(sa.select(t.datasources)):
                rec = DatasourceRecord(**row._mapping)
                memory.datasources.setdefault(rec.workspace_id, {})[rec.name] = rec
                memory.datasources_by_id[rec.id] = rec
            nodes: dict[str, list[NodeRecord]] = {}
            for row in conn.execute(sa.select(t.nodes).order_by(t.nodes.c.position)):
                nodes.setdefault(row.pipe_id, []).append(NodeRecord(**row._mapping))
            for row in conn.execute(sa.select(t.pipes)):
                pipe = PipeRecord(**row._mapping, nodes=tuple(nodes.get(row.id, ())))
                memory.pipes.setdefault(pipe.workspace_id, {})[pipe.name] = pipe
            for row in conn.execute(sa.select(t.users)):
                memory.users[row.id] = UserRecord(**row._mapping)
            for row in conn.execute(sa.select(t.members)):
                memory.members[(row.workspace_id, row.user_id)] = MemberRecord(**row._mapping)
            for row in conn.execute(sa.select(t.organization_admins)):
                memory.org_admins.add((row.organization_id, row.user_id))
            for row in conn.execute(sa.select(t.shares)):
                memory.shares.setdefault(row.workspace_id, []).append(ShareRecord(**row._mapping))
        self._memory = memory
        self.generation += 1

    # -- organizations ---------------------------------------------------------------------------

    def organizations(self) -> list[OrganizationRecord]:
        with self.db.connect() as conn:
            return [OrganizationRecord(**r._mapping) for r in conn.execute(sa.select(t.organizations))]

    def add_organization(self, rec: OrganizationRecord) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.organizations).values(**rec.__dict__))

    # -- workspaces ------------------------------------------------------------------------------

    def workspaces(self) -> list[WorkspaceRecord]:
        return sorted(self._memory.workspaces.values(), key=lambda w: w.created_at)

    def workspace(self, workspace_id: str) -> WorkspaceRecord | None:
        return self._memory.workspaces.get(workspace_id)

    def workspace_by_name(self, name: str) -> WorkspaceRecord | None:
        return next((w for w in self._memory.workspaces.values() if w.name == name), None)

    def add_workspace(self, rec: WorkspaceRecord) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.workspaces).values(**rec.__dict__))

    def update_workspace(self, workspace_id: str, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(sa.update(t.workspaces).where(t.workspaces.c.id == workspace_id).values(**values))

    def delete_workspace(self, workspace_id: str) -> None:
        with self.write() as conn:
            for table in (t.jobs, t.copy_schedules, t.shares, t.members, t.tokens):
                conn.execute(sa.delete(table).where(table.c.workspace_id == workspace_id))
            pipe_ids = sa.select(t.pipes.c.id).where(t.pipes.c.workspace_id == workspace_id)
            conn.execute(sa.delete(t.nodes).where(t.nodes.c.pipe_id.in_(pipe_ids)))
            conn.execute(sa.delete(t.pipes).where(t.pipes.c.workspace_id == workspace_id))
            ds_ids = sa.select(t.datasources.c.id).where(t.datasources.c.workspace_id == workspace_id)
            conn.execute(sa.delete(t.shares).where(t.shares.c.datasource_id.in_(ds_ids)))
            conn.execute(sa.delete(t.datasources).where(t.datasources.c.workspace_id == workspace_id))
            conn.execute(sa.delete(t.workspaces).where(t.workspaces.c.id == workspace_id))

    # -- users, organization admins and members ----------------------------------------------------

    def users(self) -> list[UserRecord]:
        return sorted(self._memory.users.values(), key=lambda u: u.created_at)

    def user(self, user_id: str) -> UserRecord | None:
        return self._memory.users.get(user_id)

    def user_by_email(self, email: str) -> UserRecord | None:
        wanted = email.strip().lower()
        return next((u for u in self._memory.users.values() if u.email.lower() == wanted), None)

    def add_user(self, rec: UserRecord) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.users).values(**rec.__dict__))

    def delete_user(self, user_id: str) -> None:
        with self.write() as conn:
            for table in (t.tokens, t.members, t.organization_admins):
                conn.execute(sa.delete(table).where(table.c.user_id == user_id))
            conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))

    def is_org_admin(self, organization_id: str, user_id: str) -> bool:
        return (organization_id, user_id) in self._memory.org_admins

    def org_admins(self, organization_id: str) -> list[UserRecord]:
        ids = [u for o, u in self._memory.org_admins if o == organization_id]
        return [self._memory.users[i] for i in ids if i in self._memory.users]

    def set_org_admin(self, organization_id: str, user_id: str, admin: bool) -> None:
        with self.write() as conn:
            table = t.organization_admins
            conn.execute(
                sa.delete(table).where(table.c.organization_id == organization_id, table.c.user_id == user_id)
            )
            if admin:
                conn.execute(sa.insert(table).values(organization_id=organization_id, user_id=user_id))

    def member(self, workspace_id: str, user_id: str) -> MemberRecord | None:
        return self._memory.members.get((workspace_id, user_id))

    def members(self, workspace_id: str) -> list[MemberRecord]:
        found = [m for (ws, _), m in self._memory.members.items() if ws == workspace_id]
        return sorted(found, key=lambda m: m.created_at)

    def memberships(self, user_id: str) -> list[MemberRecord]:
        return [m for (_, user), m in self._memory.members.items() if user == user_id]

    def set_member(self, workspace_id: str, user_id: str, role: str | None) -> None:
        """Add a member, change its role, or (role None) remove it with its personal token."""
        with self.write() as conn:
            match = (t.members.c.workspace_id == workspace_id) & (t.members.c.user_id == user_id)
            existing = conn.execute(sa.select(t.members).where(match)).first()
            if role is None:
                conn.execute(sa.delete(t.members).where(match))
                conn.execute(
                    sa.delete(t.tokens).where(
                        t.tokens.c.workspace_id == workspace_id, t.tokens.c.user_id == user_id
                    )
                )
            elif existing is None:
                row = {"workspace_id": workspace_id, "user_id": user_id, "role": role, "created_at": utcnow()}
                conn.execute(sa.insert(t.members).values(**row))
            else:
                conn.execute(sa.update(t.members).where(match).values(role=role))

    # -- shared data sources -----------------------------------------------------------------------

    def shared_into(self, workspace_id: str) -> list[tuple[WorkspaceRecord, DatasourceRecord]]:
        """Data sources other workspaces share with this one, each with its origin workspace."""
        out = []
        for share in self._memory.shares.get(workspace_id, ()):
            rec = self.datasource_by_id(share.datasource_id)
            origin = self._memory.workspaces.get(rec.workspace_id) if rec is not None else None
            if rec is not None and origin is not None:
                out.append((origin, rec))
        return out

    def shared_source(
        self, workspace_id: str, qualified: str
    ) -> tuple[WorkspaceRecord, DatasourceRecord] | None:
        """The shared data source a workspace reads as `<origin workspace>.<data source>`, if any."""
        return next(
            ((o, r) for o, r in self.shared_into(workspace_id) if f"{o.name}.{r.name}" == qualified), None
        )

    def shares_of(self, datasource_id: str) -> list[ShareRecord]:
        return [
            s for shares in self._memory.shares.values() for s in shares if s.datasource_id == datasource_id
        ]

    def datasource_by_id(self, datasource_id: str) -> DatasourceRecord | None:
        return self._memory.datasources_by_id.get(datasource_id)

    def set_share(self, datasource_id: str, workspace_id: str, shared: bool) -> None:
        with self.write() as conn:
            match = (t.shares.c.datasource_id == datasource_id) & (t.shares.c.workspace_id == workspace_id)
            conn.execute(sa.delete(t.shares).where(match))
            if shared:
                row = {"datasource_id": datasource_id, "workspace_id": workspace_id, "created_at": utcnow()}
                conn.execute(sa.insert(t.shares).values(**row))

    # -- tokens ----------------------------------------------------------------------------------

    def token_by_hash(self, value_hash: str) -> TokenRecord | None:
        return self._memory.tokens_by_hash.get(value_hash)

    def tokens(self, workspace_id: str) -> list[TokenRecord]:
        found = [r for r in self._memory.tokens_by_hash.values() if r.workspace_id == workspace_id]
        return sorted(found, key=lambda r: (r.created_at, r.name))

    def user_tokens(self, user_id: str) -> list[TokenRecord]:
        """A user's tokens: its user token (no workspace) and its personal workspace tokens."""
        found = [r for r in self._memory.tokens_by_hash.values() if r.user_id == user_id]
        return sorted(found, key=lambda r: (r.created_at, r.name))

    def add_token(self, rec: TokenRecord) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.tokens).values(**rec.__dict__))

    def update_token(self, token_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.write() as conn:
            conn.execute(sa.update(t.tokens).where(t.tokens.c.id == token_id).values(**values))

    def delete_token(self, token_id: str) -> None:
        with self.write() as conn:
            conn.execute(sa.delete(t.tokens).where(t.tokens.c.id == token_id))

    # -- data sources ----------------------------------------------------------------------------

    def datasources(self, workspace_id: str) -> dict[str, DatasourceRecord]:
        return self._memory.datasources.get(workspace_id, {})

    def datasource(self, workspace_id: str, name_or_id: str) -> DatasourceRecord | None:
        by_name = self.datasources(workspace_id)
        rec = by_name.get(name_or_id)
        if rec is None and name_or_id.startswith("t_"):
            rec = next((r for r in by_name.values() if r.id == name_or_id), None)
        return rec

    def add_datasource(self, rec: DatasourceRecord) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.datasources).values(**rec.__dict__))

    def update_datasource(self, datasource_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.write() as conn:
            conn.execute(sa.update(t.datasources).where(t.datasources.c.id == datasource_id).values(**values))

    def delete_datasource(self, datasource_id: str) -> None:
        with self.write() as conn:
            conn.execute(sa.delete(t.datasources).where(t.datasources.c.id == datasource_id))

    # -- pipes -------------------------------------------------------------------------------------

    def pipes(self, workspace_id: str) -> dict[str, PipeRecord]:
        return self._memory.pipes.get(workspace_id, {})

    def pipe(self, workspace_id: str, name_or_id: str) -> PipeRecord | None:
        by_name = self.pipes(workspace_id)
        rec = by_name.get(name_or_id)
        if rec is None and name_or_id.startswith("t_"):
            rec = next((r for r in by_name.values() if r.id == name_or_id), None)
        return rec

    def save_pipe(self, pipe: PipeRecord) -> None:
        """Insert or replace a pipe and all its nodes in one transaction."""
        row = {k: v for k, v in pipe.__dict__.items() if k != "nodes"}
        with self.write() as conn:
            conn.execute(sa.delete(t.nodes).where(t.nodes.c.pipe_id == pipe.id))
            conn.execute(sa.delete(t.pipes).where(t.pipes.c.id == pipe.id))
            conn.execute(sa.insert(t.pipes).values(**row))
            for node in pipe.nodes:
                conn.execute(sa.insert(t.nodes).values(**node.__dict__))

    def delete_pipe(self, pipe_id: str) -> None:
        with self.write() as conn:
            conn.execute(sa.delete(t.nodes).where(t.nodes.c.pipe_id == pipe_id))
            conn.execute(sa.delete(t.pipes).where(t.pipes.c.id == pipe_id))

    # -- jobs (not cached: never on a hot path) ---------------------------------------------------

    def add_job(self, rec: JobRecord) -> None:
        with self._write_lock, self.db.begin() as conn:
            conn.execute(sa.insert(t.jobs).values(**rec.__dict__))

    def update_job(self, job_id: str, **values: Any) -> JobRecord:
        values["updated_at"] = utcnow()
        with self._write_lock, self.db.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(**values))
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).one()
        return JobRecord(**row._mapping)

    def job(self, workspace_id: str, job_id: str) -> JobRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(
                sa.select(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.workspace_id == workspace_id)
            ).first()
        return JobRecord(**row._mapping) if row else None

    def job_by_id(self, job_id: str) -> JobRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
        return JobRecord(**row._mapping) if row else None

    def jobs(self, workspace_id: str, since: datetime, limit: int = 100) -> list[JobRecord]:
        query = (
            sa.select(t.jobs)
            .where(t.jobs.c.workspace_id == workspace_id, t.jobs.c.created_at >= since)
            .order_by(t.jobs.c.created_at.desc())
            .limit(limit)
        )
        with self.db.connect() as conn:
            return [JobRecord(**r._mapping) for r in conn.execute(query)]

    def fail_unfinished_jobs(self, message: str) -> list[JobRecord]:
        """After a restart nothing is running: jobs left waiting or working end as errors (returned)."""
        unfinished = t.jobs.c.status.in_(("waiting", "working"))
        with self._write_lock, self.db.begin() as conn:
            ids = [r.id for r in conn.execute(sa.select(t.jobs.c.id).where(unfinished))]
            conn.execute(
                sa.update(t.jobs).where(unfinished).values(status="error", error=message, updated_at=utcnow())
            )
            rows = conn.execute(sa.select(t.jobs).where(t.jobs.c.id.in_(ids))) if ids else []
            return [JobRecord(**r._mapping) for r in rows]

    # -- copy schedules (read by the scheduler's tick, not cached) ---------------------------------

    def copy_schedules(self) -> list[CopyScheduleRecord]:
        with self.db.connect() as conn:
            return [CopyScheduleRecord(**r._mapping) for r in conn.execute(sa.select(t.copy_schedules))]

    def copy_schedule(self, pipe_id: str) -> CopyScheduleRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(
                sa.select(t.copy_schedules).where(t.copy_schedules.c.pipe_id == pipe_id)
            ).first()
        return CopyScheduleRecord(**row._mapping) if row else None

    def save_copy_schedule(self, rec: CopyScheduleRecord) -> None:
        with self._write_lock, self.db.begin() as conn:
            conn.execute(sa.delete(t.copy_schedules).where(t.copy_schedules.c.pipe_id == rec.pipe_id))
            conn.execute(sa.insert(t.copy_schedules).values(**rec.__dict__))

    def update_copy_schedule(self, pipe_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self._write_lock, self.db.begin() as conn:
            conn.execute(
                sa.update(t.copy_schedules).where(t.copy_schedules.c.pipe_id == pipe_id).values(**values)
            )

    def delete_copy_schedule(self, pipe_id: str) -> None:
        with self._write_lock, self.db.begin() as conn:
            conn.execute(sa.delete(t.copy_schedules).where(t.copy_schedules.c.pipe_id == pipe_id))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
