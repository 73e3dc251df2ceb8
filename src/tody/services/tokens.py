"""Tokens and what they allow: scopes as Tinybird names them, and the request principal.

A scope string is `TYPE[:resource[:filter]]` (e.g. `DATASOURCES:READ:events:country = 'ES'`); the
catalog stores it as `{"type", "resource"?, "filter"?}`. Singular `DATASOURCE:`/`PIPE:` are aliases.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tody.catalog.store import Catalog, TokenRecord, UserRecord, WorkspaceRecord, utcnow
from tody.services.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from tody.services.names import validate_name
from tody.services.secrets import ServerKey
from tody.sql.gate import validate_expression
from tody.sql.walk import SQLGateError

ADMIN = "ADMIN"
ADMIN_USER = "ADMIN_USER"
TOKENS = "TOKENS"
READ_ALL = "WORKSPACE:READ_ALL"
ORG_DATASOURCES_READ = "ORG_DATASOURCES:READ"
DATASOURCES_CREATE = "DATASOURCES:CREATE"
DATASOURCES_APPEND = "DATASOURCES:APPEND"
DATASOURCES_READ = "DATASOURCES:READ"
DATASOURCES_DROP = "DATASOURCES:DROP"
PIPES_CREATE = "PIPES:CREATE"
PIPES_READ = "PIPES:READ"
PIPES_DROP = "PIPES:DROP"

WORKSPACE_SCOPES = {
    ADMIN,
    ADMIN_USER,
    TOKENS,
    READ_ALL,
    ORG_DATASOURCES_READ,
    DATASOURCES_CREATE,
    PIPES_CREATE,
}
RESOURCE_SCOPES = {DATASOURCES_APPEND, DATASOURCES_READ, DATASOURCES_DROP, PIPES_READ, PIPES_DROP}
FILTERABLE = {DATASOURCES_READ, PIPES_READ}

WORKSPACE_ADMIN_TOKEN = "Workspace admin token"
USER_TOKEN = "User token"
ANY_RESOURCE = "*"


@dataclass(frozen=True)
class Scope:
    type: str
    resource: str | None = None
    filter: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        raw = text.strip()
        parts = raw.split(":", 3)
        head = parts[0].upper()
        head = {"DATASOURCE": "DATASOURCES", "PIPE": "PIPES"}.get(head, head)
        if len(parts) >= 2 and f"{head}:{parts[1].upper()}" in WORKSPACE_SCOPES | RESOURCE_SCOPES:
            kind, rest = f"{head}:{parts[1].upper()}", parts[2:]
        else:
            kind, rest = head, parts[1:]
        if kind in WORKSPACE_SCOPES and not rest:
            return cls(kind)
        if kind in RESOURCE_SCOPES and rest and rest[0]:
            flt = ":".join(rest[1:]) if len(rest) > 1 else None
            if flt is not None and kind not in FILTERABLE:
                raise BadRequest(
                    f"Scope '{raw}' cannot carry a filter; only DATASOURCES:READ and PIPES:READ can"
                )
            return cls(kind, rest[0], flt or None)
        if kind in RESOURCE_SCOPES:
            raise BadRequest(f"Scope '{raw}' needs a resource, e.g. '{kind}:<name>'")
        raise BadRequest(
            f"Unknown scope '{raw}'. Valid scopes: {', '.join(sorted(WORKSPACE_SCOPES | RESOURCE_SCOPES))}"
        )

    def as_dict(self) -> dict[str, str]:
        out = {"type": self.type}
        if self.resource:
            out["resource"] = self.resource
        if self.filter:
            out["filter"] = self.filter
        return out

    def __str__(self) -> str:
        return ":".join(p for p in (self.type, self.resource, self.filter) if p)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a workspace and the scopes of the token used. A JWT also brings the params it
    fixes per pipe and its own requests-per-second limit."""

    workspace: WorkspaceRecord
    token: TokenRecord
    scopes: tuple[Scope, ...]
    fixed_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    rps: int | None = None
    is_jwt: bool = False
    user: UserRecord | None = None  # a member's personal token: its user, and
    role: str | None = None  # its role (admin, guest, viewer), which gave the scopes

    @property
    def is_admin(self) -> bool:
        return any(s.type in (ADMIN, ADMIN_USER) for s in self.scopes)

    def has(self, scope_type: str, resource: str | None = None) -> bool:
        if self.is_admin:
            return True
        if scope_type in (DATASOURCES_READ, PIPES_READ) and any(s.type == READ_ALL for s in self.scopes):
            return True
        return any(
            s.type == scope_type and (resource is None or s.resource in (resource, ANY_RESOURCE))
            for s in self.scopes
        )

    def require(self, scope_type: str, resource: str | None = None) -> None:
        """The one check behind every route: raises 403 naming the scope that is missing."""
        if self.has(scope_type, resource):
            return
        wanted = f"{scope_type}:{resource}" if resource else scope_type
        raise Forbidden(f"Not enough permissions: this token needs the {wanted} scope (or ADMIN)")

    def require_append(self, datasource: str) -> None:
        """Appending to a data source: DATASOURCES:APPEND on it, or DATASOURCES:CREATE."""
        if not self.has(DATASOURCES_CREATE):
            self.require(DATASOURCES_APPEND, datasource)

    def as_workspace(self, read_filters: dict[str, str] | None = None) -> Principal:
        """The workspace itself (ADMIN), for SQL a service keeps or runs on its behalf (views, copies): no
        row filter of the caller's token ends up in it. With `read_filters`, only those reads, filtered."""
        if read_filters:
            scopes = tuple(Scope(DATASOURCES_READ, name, flt) for name, flt in read_filters.items())
            return Principal(self.workspace, self.token, scopes)
        return Principal(self.workspace, self.token, (Scope(ADMIN),))

    def can_read_pipe(self, name: str) -> bool:
        return self.has(PIPES_READ, name) or self.has(PIPES_CREATE)

    def can_describe_datasource(self, name: str) -> bool:
        """Its schema and statistics (not its rows): any scope on it, or DATASOURCES:CREATE."""
        return self.has(DATASOURCES_CREATE) or any(
            self.has(kind, name) for kind in (DATASOURCES_READ, DATASOURCES_APPEND, DATASOURCES_DROP)
        )

    def can_read_datasource(self, name: str) -> bool:
        return self.has(DATASOURCES_READ, name)  # ADMIN and WORKSPACE:READ_ALL included

    def pipe_filter(self, name: str) -> str | None:
        """Row filter on the output of pipe `name` (a `PIPES:READ:<pipe>:<filter>` scope)."""
        if self.is_admin or self.has(READ_ALL):
            return None
        filters = [s.filter for s in self.scopes if s.type == PIPES_READ and s.resource == name]
        if any(f is None for f in filters):
            return None
        return " OR ".join(f"({f})" for f in filters) if filters else None

    def datasource_filter(self, name: str) -> str | None:
        """Row filter this token applies to `name`, when it reads it through a filtered scope."""
        if self.is_admin or self.has(READ_ALL):
            return None
        filters = [s.filter for s in self.scopes if s.type == DATASOURCES_READ and s.resource == name]
        if any(f is None for f in filters):
            return None
        return " OR ".join(f"({f})" for f in filters) if filters else None


@dataclass(frozen=True)
class UserPrincipal:
    """A user token: it manages the user's workspaces and (for organization admins) users and the
    organization; it reads no workspace's resources itself."""

    user: UserRecord
    token: TokenRecord


def service_principal(workspace: WorkspaceRecord, name: str) -> Principal:
    """The workspace itself (ADMIN) for work nobody's request asked for (the scheduler, deleting a
    workspace): a token record that is never stored and matches no value."""
    now = utcnow()
    token = TokenRecord(
        id=f"{name}:{workspace.id}",
        workspace_id=workspace.id,
        name=name,
        description="",
        value_hash="",
        value_encrypted="",
        scopes=[{"type": ADMIN}],
        origin="",
        created_at=now,
        updated_at=now,
    )
    return Principal(workspace, token, (Scope(ADMIN),))


# What a member's role allows in a workspace, as scopes (`*`: every resource of that kind).
ROLES = ("admin", "guest", "viewer")
ROLE_SCOPES: dict[str, tuple[Scope, ...]] = {
    "admin": (Scope(ADMIN),),
    "guest": (
        Scope(READ_ALL),
        Scope(DATASOURCES_CREATE),
        Scope(DATASOURCES_APPEND, ANY_RESOURCE),
        Scope(DATASOURCES_DROP, ANY_RESOURCE),
        Scope(PIPES_CREATE),
        Scope(PIPES_DROP, ANY_RESOURCE),
    ),
    "viewer": (Scope(READ_ALL),),
}

# Scopes that make a token an administrator: only an admin may grant them, see their values or
# change tokens holding them (a TOKENS token cannot climb to ADMIN).
ADMIN_LEVEL = {ADMIN, ADMIN_USER}
QUARANTINE_SUFFIX = "_quarantine"


class TokenService:
    """Static tokens: values encrypted with the server key and found by a keyed hash (DESIGN §8).

    Scopes are stored with the id of their resource, so a renamed data source or pipe keeps its
    tokens and a new one that takes an old name does not inherit them; they read as current names.
    """

    def __init__(self, catalog: Catalog, key: ServerKey):
        self.catalog = catalog
        self.key = key
        self._principals: dict[str, tuple[int, Principal]] = {}
        self._lock = threading.Lock()
        self.jwt: Any = None  # the JwtService, set by the platform (it signs with the workspace admin token)

    @staticmethod
    def new_value(workspace_id: str, token_id: str) -> str:
        # Shape of Tinybird's static tokens (`p.` + base64 JSON + `.` + secret) so clients that redact
        # `p.ey…` strings (the tb CLI's telemetry and output) treat ours the same way.
        head = orjson.dumps({"u": workspace_id, "id": token_id})
        encoded = base64.urlsafe_b64encode(head).decode().rstrip("=")
        return f"p.{encoded}.{secrets.token_urlsafe(32)}"

    # -- creating and changing (no permission checks: callers with a principal use the API methods)

    def create(
        self,
        workspace: WorkspaceRecord | None,
        name: str,
        scopes: list[Scope],
        *,
        description: str = "",
        origin: str = "",
        value: str | None = None,
        user_id: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """A stored token: a workspace's, a user token (no workspace), or a member's personal token
        (workspace and user, no scopes: they come from the role)."""
        token_id = str(uuid.uuid4())
        value = value or self.new_value(workspace.id if workspace else "", token_id)
        now = utcnow()
        rec = TokenRecord(
            id=token_id,
            workspace_id=workspace.id if workspace else None,
            name=name,
            description=description,
            value_hash=self.key.lookup_hash(value),
            value_encrypted=self.key.encrypt(value),
            scopes=[self._stored(workspace, s) if workspace else s.as_dict() for s in scopes],
            origin=origin,
            created_at=now,
            updated_at=now,
            user_id=user_id,
        )
        self.catalog.add_token(rec)
        return rec, value

    def _stored(self, workspace: WorkspaceRecord, scope: Scope) -> dict[str, str]:
        out = scope.as_dict()
        found = self._resource(workspace, scope)
        if found is not None:
            out["resource_id"] = found
        return out

    def _resource(self, workspace: WorkspaceRecord, scope: Scope) -> str | None:
        """Id of the resource a scope names (`<ds id>#quarantine` for a quarantine), None if absent."""
        if scope.resource is None:
            return None
        if scope.type.startswith("PIPES:"):
            pipe = self.catalog.pipe(workspace.id, scope.resource)
            return pipe.id if pipe else None
        ds = self.catalog.datasource(workspace.id, scope.resource)
        if ds is not None:
            return ds.id
        if "." in scope.resource and scope.type == DATASOURCES_READ:  # shared with this workspace
            return next((i for i, n in self._shared_names(workspace.id).items() if n == scope.resource), None)
        if scope.type == DATASOURCES_READ and scope.resource.endswith(QUARANTINE_SUFFIX):
            ds = self.catalog.datasource(workspace.id, scope.resource[: -len(QUARANTINE_SUFFIX)])
            return f"{ds.id}#quarantine" if ds else None
        return None

    def _current_names(self, workspace_id: str) -> dict[str, str]:
        names = {ds.id: name for name, ds in self.catalog.datasources(workspace_id).items()}
        names.update({f"{ds_id}#quarantine": name + QUARANTINE_SUFFIX for ds_id, name in list(names.items())})
        names.update({pipe.id: name for name, pipe in self.catalog.pipes(workspace_id).items()})
        names.update(self._shared_names(workspace_id))
        return names

    def _shared_names(self, workspace_id: str) -> dict[str, str]:
        """Data sources shared with this workspace: id -> `<origin workspace>.<name>`."""
        return {rec.id: f"{origin.name}.{rec.name}" for origin, rec in self.catalog.shared_into(workspace_id)}

    def scopes_of(self, rec: TokenRecord) -> tuple[Scope, ...]:
        """The token's scopes with today's resource names; scopes whose resource is gone are dropped."""
        names = None
        out = []
        for s in rec.scopes:
            resource = s.get("resource")
            if s.get("resource_id"):
                names = names if names is not None else self._current_names(rec.workspace_id)
                resource = names.get(s["resource_id"])
                if resource is None:
                    continue
            out.append(Scope(s["type"], resource, s.get("filter")))
        return tuple(out)

    def workspace_admin(self, workspace: WorkspaceRecord) -> TokenRecord | None:
        """The workspace admin token (it signs JWTs; Tinybird Local's /tokens shows it): the one by
        that name, else the first workspace-wide ADMIN token."""
        admins = [
            r
            for r in self.catalog.tokens(workspace.id)
            if r.user_id is None and any(s.get("type") == ADMIN and not s.get("resource") for s in r.scopes)
        ]
        named = [r for r in admins if r.name == WORKSPACE_ADMIN_TOKEN]
        return (named or admins or [None])[0]

    def value(self, rec: TokenRecord) -> str:
        return self.key.decrypt(rec.value_encrypted)

    # -- authentication --------------------------------------------------------------------------

    def authenticate(self, value: str | None) -> Principal:
        """The principal of a workspace token (static, personal or JWT); a user token is refused."""
        principal = self.authenticate_any(value)
        if isinstance(principal, UserPrincipal):
            raise Forbidden(
                "This is a user token: it manages users and workspaces. Call workspace routes with a "
                "workspace token (GET /v0/workspaces/{id}?with_token=true gives yours)"
            )
        return principal

    def authenticate_any(self, value: str | None) -> Principal | UserPrincipal:
        if not value:
            raise Unauthorized(
                "Missing token: pass it as 'Authorization: Bearer <token>' or '?token=<token>'"
            )
        value_hash = self.key.lookup_hash(value)
        generation = self.catalog.generation
        cached = self._principals.get(value_hash)
        if cached is not None and cached[0] == generation:
            return cached[1]
        rec = self.catalog.token_by_hash(value_hash)
        if rec is None:
            if self.jwt is not None and self.jwt.looks_like(value):
                return self.jwt.authenticate(value)
            raise Forbidden("Invalid token: it does not exist or was refreshed or deleted")
        principal = self._principal(rec)
        with self._lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[value_hash] = (generation, principal)
        return principal

    def _principal(self, rec: TokenRecord) -> Principal | UserPrincipal:
        user = self.catalog.user(rec.user_id) if rec.user_id else None
        if rec.user_id and user is None:
            raise Forbidden("Invalid token: its user no longer exists")
        if rec.workspace_id is None:
            assert user is not None
            return UserPrincipal(user=user, token=rec)
        workspace = self.catalog.workspace(rec.workspace_id)
        if workspace is None:
            raise Forbidden("Invalid token: its workspace no longer exists")
        if user is None:
            return Principal(workspace=workspace, token=rec, scopes=self.scopes_of(rec))
        role = self.role_of(workspace, user.id)
        if role is None:
            raise Forbidden(
                f"Invalid token: {user.email} is no longer a member of workspace '{workspace.name}'"
            )
        return Principal(workspace=workspace, token=rec, scopes=ROLE_SCOPES[role], user=user, role=role)

    def is_org_admin(self, principal: Principal) -> bool:
        """The caller is an admin of its workspace's organization (through its personal token)."""
        user = principal.user
        return user is not None and self.catalog.is_org_admin(principal.workspace.organization_id, user.id)

    def role_of(self, workspace: WorkspaceRecord, user_id: str) -> str | None:
        """A user's role in a workspace; organization admins are admins in every workspace of theirs."""
        if self.catalog.is_org_admin(workspace.organization_id, user_id):
            return "admin"
        member = self.catalog.member(workspace.id, user_id)
        return member.role if member else None

    # -- the Tokens API --------------------------------------------------------------------------

    def visible(self, principal: Principal) -> list[TokenRecord]:
        principal.require(TOKENS)
        return self.catalog.tokens(principal.workspace.id)

    def get(self, principal: Principal, name_or_id: str) -> TokenRecord:
        principal.require(TOKENS)
        found = [r for r in self.catalog.tokens(principal.workspace.id) if name_or_id in (r.id, r.name)]
        if not found:
            raise NotFound(f"Token '{name_or_id}' not found in this workspace")
        return found[0]

    def parse_scopes(self, principal: Principal, texts: list[str]) -> list[Scope]:
        """Scope strings of a create or update request: valid, existing resources, gated filters, and
        nothing above the caller (only an admin grants ADMIN)."""
        scopes: list[Scope] = []
        for text in texts:
            if not text.strip():
                continue
            scope = Scope.parse(text)
            if scope.type in ADMIN_LEVEL and not principal.is_admin:
                raise Forbidden(f"Only an admin token can grant the {scope.type} scope")
            if scope.type == ORG_DATASOURCES_READ and not self.is_org_admin(principal):
                raise Forbidden(
                    "Only an organization admin (with their personal token) can grant ORG_DATASOURCES:READ: "
                    "it reads every workspace's consumption in the organization"
                )
            if scope.resource is not None and self._resource(principal.workspace, scope) is None:
                kind = "Pipe" if scope.type.startswith("PIPES:") else "Data Source"
                raise BadRequest(
                    f"Scope '{scope}': {kind} '{scope.resource}' does not exist in this workspace"
                )
            if scope.filter:
                self._check_filter(principal.workspace, scope)
            if scope not in scopes:
                scopes.append(scope)
        return scopes

    def _check_filter(self, workspace: WorkspaceRecord, scope: Scope) -> None:
        """A row filter passes the SQL gate as an expression over the data source's columns."""
        assert scope.filter is not None and scope.resource is not None
        ds = self.catalog.datasource(workspace.id, scope.resource) if scope.type == DATASOURCES_READ else None
        columns = [c["name"] for c in ds.columns] if ds is not None else None
        try:
            validate_expression(scope.filter, columns)
        except SQLGateError as exc:
            raise BadRequest(f"Scope '{scope}': the filter is not valid: {exc}") from None

    def _check_name(self, principal: Principal, name: str, *, keep: TokenRecord | None = None) -> None:
        validate_name(name, "Token")
        clash = next((r for r in self.catalog.tokens(principal.workspace.id) if r.name == name), None)
        if clash is not None and (keep is None or clash.id != keep.id):
            raise Conflict(f"A token named '{name}' already exists in this workspace")

    def _check_may_change(self, principal: Principal, rec: TokenRecord, *, refresh: bool = False) -> None:
        if rec.user_id is not None and not (refresh and principal.is_admin):
            raise Forbidden(
                f"'{rec.name}' is a member's personal token: its rights follow the member's role; change "
                "the role or remove the member instead (an admin may refresh it)"
            )
        if not principal.is_admin and any(s.get("type") in ADMIN_LEVEL for s in rec.scopes):
            raise Forbidden(f"Only an admin token can change or see the admin token '{rec.name}'")

    def create_static(
        self, principal: Principal, name: str, scopes: list[str], *, description: str = "", origin: str = ""
    ) -> tuple[TokenRecord, str]:
        principal.require(TOKENS)
        self._check_name(principal, name)
        parsed = self.parse_scopes(principal, scopes)
        return self.create(principal.workspace, name, parsed, description=description, origin=origin)

    def update(
        self,
        principal: Principal,
        name_or_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        scopes: list[str] | None = None,
    ) -> TokenRecord:
        rec = self.get(principal, name_or_id)
        self._check_may_change(principal, rec)
        changes: dict[str, Any] = {}
        if name is not None and name != rec.name:
            self._check_name(principal, name, keep=rec)
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if scopes is not None:
            parsed = self.parse_scopes(principal, scopes)
            changes["scopes"] = [self._stored(principal.workspace, s) for s in parsed]
        if changes:
            self.catalog.update_token(rec.id, **changes)
        return self.get(principal, rec.id)

    def delete(self, principal: Principal, name_or_id: str) -> None:
        rec = self.get(principal, name_or_id)
        self._check_may_change(principal, rec)
        if rec.name == WORKSPACE_ADMIN_TOKEN:
            # it signs the workspace's JWTs and is the way back in; refreshing it is the way to revoke
            raise Conflict(f"The '{WORKSPACE_ADMIN_TOKEN}' cannot be deleted; refresh it to change its value")
        self.catalog.delete_token(rec.id)

    def refresh(self, principal: Principal, name_or_id: str) -> tuple[TokenRecord, str]:
        """A new secret for the same token: the old value stops working at once (and, for the workspace
        admin token, every JWT signed with it)."""
        rec = self.get(principal, name_or_id)
        self._check_may_change(principal, rec, refresh=True)
        value = self.new_value(rec.workspace_id or "", rec.id)
        self.catalog.update_token(
            rec.id, value_hash=self.key.lookup_hash(value), value_encrypted=self.key.encrypt(value)
        )
        return self.get(principal, rec.id), value

    def public(self, rec: TokenRecord, *, viewer: Principal | None = None) -> dict:
        """A token as the API shows it; its value only to whom may see it (admins see every value)."""
        out: dict[str, Any] = {
            "id": rec.id,
            "name": rec.name,
            "description": rec.description,
            "scopes": [s.as_dict() for s in self.scopes_of(rec)],
            "origin": {"type": rec.origin} if rec.origin else {},
            "created_at": rec.created_at.isoformat(sep=" "),
            "updated_at": rec.updated_at.isoformat(sep=" "),
        }
        admin_level = any(s.get("type") in ADMIN_LEVEL for s in rec.scopes)
        if viewer is None or viewer.is_admin or not admin_level:
            out["token"] = self.value(rec)
        return out
