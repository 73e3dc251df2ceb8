"""Organizations and workspaces. Each workspace is one ClickHouse database (`Atomic`)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from tody.catalog.store import Catalog, OrganizationRecord, WorkspaceRecord, utcnow
from tody.engine.base import Engine, quote_identifier
from tody.services.errors import BadRequest, Conflict, Forbidden, NotFound
from tody.services.names import validate_name
from tody.services.ratelimit import RequestLimits
from tody.services.tokens import (
    ADMIN,
    WORKSPACE_ADMIN_TOKEN,
    Principal,
    Scope,
    TokenService,
    UserPrincipal,
    service_principal,
)

DEFAULT_ORGANIZATION = "default"
DEFAULT_WORKSPACE = "default_workspace"


class WorkspaceService:
    def __init__(self, catalog: Catalog, engine: Engine, tokens: TokenService):
        self.catalog = catalog
        self.engine = engine
        self.tokens = tokens

    def create_organization(self, name: str) -> OrganizationRecord:
        rec = OrganizationRecord(id=str(uuid.uuid4()), name=name, created_at=utcnow())
        self.catalog.add_organization(rec)
        return rec

    def create(
        self, organization_id: str, name: str, *, admin_token: str | None = None
    ) -> tuple[WorkspaceRecord, str]:
        """Create a workspace, its database and its admin token; returns the token value."""
        validate_name(name, "Workspace")
        if self.catalog.workspace_by_name(name):
            raise Conflict(f"Workspace '{name}' already exists")
        workspace_id = str(uuid.uuid4())
        rec = WorkspaceRecord(
            id=workspace_id,
            organization_id=organization_id,
            name=name,
            database="w_" + workspace_id.replace("-", ""),
            created_at=utcnow(),
        )
        # The database first: a crash between the two leaves an unused database, never a dangling record.
        self.engine.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(rec.database)} ENGINE = Atomic")
        self.catalog.add_workspace(rec)
        _, value = self.tokens.create(rec, WORKSPACE_ADMIN_TOKEN, [Scope(ADMIN)], value=admin_token)
        return rec, value

    def ensure_default(self, admin_token: str | None = None) -> WorkspaceRecord:
        """First start: a default organization, a default workspace and its admin token."""
        existing = self.catalog.workspaces()
        if existing:
            return existing[0]
        orgs = self.catalog.organizations() or [self.create_organization(DEFAULT_ORGANIZATION)]
        workspace, _ = self.create(orgs[0].id, DEFAULT_WORKSPACE, admin_token=admin_token or None)
        return workspace

    def admin_token(self, workspace: WorkspaceRecord) -> str:
        rec = self.tokens.workspace_admin(workspace)
        assert rec is not None, "every workspace is made with its admin token"
        return self.tokens.value(rec)

    def describe(self, principal: Principal) -> dict:
        """`GET /v0/workspace`: the caller's workspace as the tb CLI reads it."""
        ws = principal.workspace
        return {
            "id": ws.id,
            "name": ws.name,
            "scope": "admin" if principal.is_admin else "user",
            "role": principal.role or ("admin" if principal.is_admin else "viewer"),
            "organization_id": ws.organization_id,
            "created_at": ws.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "is_branch": False,
            "main": None,
            "release": {},
            "plan": "custom",
            "user_email": principal.user.email if principal.user else None,
            "user_id": principal.user.id if principal.user else principal.token.id,
            "token_name": principal.token.name,
        }

    # -- request rate limits ---------------------------------------------------------------------

    def limits(self, workspace: WorkspaceRecord, defaults: RequestLimits) -> dict:
        """The workspace's request limits as the API shows them (pipes by name; 0 = no limit)."""
        own = workspace.limits
        pipes_by_id = {p.id: p.name for p in self.catalog.pipes(workspace.id).values()}
        return {
            "token_rps": own.get("token_rps", defaults.token_rps),
            "endpoint_rps": own.get("endpoint_rps", defaults.endpoint_rps),
            "endpoints": {
                pipes_by_id[pid]: rps for pid, rps in own.get("endpoints", {}).items() if pid in pipes_by_id
            },
        }

    def set_limits(self, principal: Principal, changes: dict[str, str]) -> WorkspaceRecord:
        """`token_rps`, `endpoint_rps` and `endpoint_rps.<pipe>`: requests per second (0 = no limit,
        empty = back to the server's default)."""
        principal.require(ADMIN)
        workspace = principal.workspace
        limits = {**workspace.limits, "endpoints": dict(workspace.limits.get("endpoints", {}))}
        for key, raw in changes.items():
            value = _rps(key, raw)
            if key in ("token_rps", "endpoint_rps"):
                target, field = limits, key
            elif key.startswith("endpoint_rps."):
                pipe = self.catalog.pipe(workspace.id, key.partition(".")[2])
                if pipe is None:
                    raise BadRequest(f"'{key}': there is no pipe '{key.partition('.')[2]}' in this workspace")
                target, field = limits["endpoints"], pipe.id
            else:
                raise BadRequest(f"Unknown limit '{key}': use token_rps, endpoint_rps or endpoint_rps.<pipe>")
            if value is None:
                target.pop(field, None)
            else:
                target[field] = value
        self.catalog.update_workspace(workspace.id, limits=limits)
        updated = self.catalog.workspace(workspace.id)
        assert updated is not None
        return updated


def _rps(key: str, raw: str) -> int | None:
    if raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{key}' must be a whole number of requests per second (0 = no limit)") from None
    if value < 0:
        raise BadRequest(f"'{key}' cannot be negative (0 = no limit)")
    return value


class WorkspaceLifecycle:
    """Workspaces users create and delete (`POST|DELETE /v0/workspaces`), and the first user."""

    def __init__(self, platform: Any):
        self.p = platform

    def ensure_first_user(
        self, email: str, token: str | None, password: str | None
    ) -> tuple[str, str] | None:
        """First start (or the first start after users came): a first user, admin of the organization
        and of every workspace. Returns (token, password) when it was just made, else None."""
        catalog = self.p.catalog
        if catalog.users():
            return None
        password = password or secrets.token_urlsafe(12)
        user, value = self.p.users.create(email, password, token=token or None)
        for org in catalog.organizations():
            catalog.set_org_admin(org.id, user.id, True)
        for workspace in catalog.workspaces():
            self.p.members.add(workspace, user, "admin")
        return value, password

    def create(self, actor: UserPrincipal, name: str, organization_id: str | None = None) -> dict:
        catalog = self.p.catalog
        orgs = catalog.organizations()
        if organization_id:
            if not any(o.id == organization_id for o in orgs):
                raise NotFound(f"Organization '{organization_id[:80]}' not found")
            if not catalog.is_org_admin(organization_id, actor.user.id):
                raise Forbidden("Only an admin of that organization can create workspaces in it")
            org_id = organization_id
        else:
            mine = [o for o in orgs if catalog.is_org_admin(o.id, actor.user.id)]
            member_of = {
                catalog.workspace(m.workspace_id).organization_id for m in catalog.memberships(actor.user.id)
            }
            org_id = (mine or [o for o in orgs if o.id in member_of] or orgs)[0].id
        workspace, _ = self.p.workspaces.create(org_id, name)
        self.p.members.add(workspace, actor.user, "admin")
        token = self.p.members.personal_token(workspace, actor.user)
        return {"id": workspace.id, "name": workspace.name, "token": token, "organization_id": org_id}

    def delete(self, actor: Any, workspace_id_or_name: str, *, force: bool = False) -> None:
        """Drop a workspace: its data, pipes, tokens, members, shares and stats. Refused while other
        workspaces' pipes read data sources it shares with them, unless forced."""
        p = self.p
        workspace = p.members.require_admin(actor, workspace_id_or_name)
        users = p.sharing.outside_readers(workspace)
        if users and not force:
            raise Conflict(
                f"Workspace '{workspace.name}' shares data sources that other workspaces' pipes read: "
                f"{', '.join(users)}; remove those pipes or pass force=true",
                dependent_pipes=users,
            )
        as_admin = service_principal(workspace, "workspace-deletion")
        for pipe in list(p.catalog.pipes(workspace.id).values()):
            for hook in p.pipes.drop_hooks:  # views, copy schedules
                hook(as_admin, pipe)
        for rec in list(p.catalog.datasources(workspace.id).values()):
            for hook in p.datasources.drop_hooks:  # event pipelines, views
                hook(rec)
        p.engine.execute(f"DROP DATABASE IF EXISTS {quote_identifier(workspace.database)} SYNC")
        p.stats.forget_workspace(workspace.id)
        p.catalog.delete_workspace(workspace.id)
