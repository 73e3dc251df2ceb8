"""Tokens and what they allow: scopes as Tinybird names them, and the request principal.

A scope string is `TYPE[:resource[:filter]]` (e.g. `DATASOURCES:READ:events:country = 'ES'`); the
catalog stores it as `{"type", "resource"?, "filter"?}`. Singular `DATASOURCE:`/`PIPE:` are aliases.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass

import orjson

from tody.catalog.store import Catalog, TokenRecord, WorkspaceRecord, utcnow
from tody.services.errors import BadRequest, Forbidden, Unauthorized
from tody.services.secrets import ServerKey

ADMIN = "ADMIN"
ADMIN_USER = "ADMIN_USER"
TOKENS = "TOKENS"
READ_ALL = "WORKSPACE:READ_ALL"
DATASOURCES_CREATE = "DATASOURCES:CREATE"
DATASOURCES_APPEND = "DATASOURCES:APPEND"
DATASOURCES_READ = "DATASOURCES:READ"
DATASOURCES_DROP = "DATASOURCES:DROP"
PIPES_CREATE = "PIPES:CREATE"
PIPES_READ = "PIPES:READ"
PIPES_DROP = "PIPES:DROP"

WORKSPACE_SCOPES = {ADMIN, ADMIN_USER, TOKENS, READ_ALL, DATASOURCES_CREATE, PIPES_CREATE}
RESOURCE_SCOPES = {DATASOURCES_APPEND, DATASOURCES_READ, DATASOURCES_DROP, PIPES_READ, PIPES_DROP}
FILTERABLE = {DATASOURCES_READ, PIPES_READ}

WORKSPACE_ADMIN_TOKEN = "Workspace admin token"


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
    """Who is calling: a workspace and the scopes of the token used."""

    workspace: WorkspaceRecord
    token: TokenRecord
    scopes: tuple[Scope, ...]

    @property
    def is_admin(self) -> bool:
        return any(s.type in (ADMIN, ADMIN_USER) for s in self.scopes)

    def has(self, scope_type: str, resource: str | None = None) -> bool:
        if self.is_admin:
            return True
        return any(s.type == scope_type and (resource is None or s.resource == resource) for s in self.scopes)

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

    def can_read_datasource(self, name: str) -> bool:
        return self.is_admin or self.has(READ_ALL) or self.has(DATASOURCES_READ, name)

    def datasource_filter(self, name: str) -> str | None:
        """Row filter this token applies to `name`, when it reads it through a filtered scope."""
        if self.is_admin or self.has(READ_ALL):
            return None
        filters = [s.filter for s in self.scopes if s.type == DATASOURCES_READ and s.resource == name]
        if any(f is None for f in filters):
            return None
        return " OR ".join(f"({f})" for f in filters) if filters else None


class TokenService:
    def __init__(self, catalog: Catalog, key: ServerKey):
        self.catalog = catalog
        self.key = key

    @staticmethod
    def new_value(workspace_id: str, token_id: str) -> str:
        # Shape of Tinybird's static tokens (`p.` + base64 JSON + `.` + secret) so clients that redact
        # `p.ey…` strings (the tb CLI's telemetry and output) treat ours the same way.
        head = orjson.dumps({"u": workspace_id, "id": token_id})
        encoded = base64.urlsafe_b64encode(head).decode().rstrip("=")
        return f"p.{encoded}.{secrets.token_urlsafe(32)}"

    def create(
        self,
        workspace: WorkspaceRecord,
        name: str,
        scopes: list[Scope],
        *,
        description: str = "",
        origin: str = "",
        value: str | None = None,
    ) -> tuple[TokenRecord, str]:
        token_id = str(uuid.uuid4())
        value = value or self.new_value(workspace.id, token_id)
        now = utcnow()
        rec = TokenRecord(
            id=token_id,
            workspace_id=workspace.id,
            name=name,
            description=description,
            value_hash=self.key.lookup_hash(value),
            value_encrypted=self.key.encrypt(value),
            scopes=[s.as_dict() for s in scopes],
            origin=origin,
            created_at=now,
            updated_at=now,
        )
        self.catalog.add_token(rec)
        return rec, value

    def value(self, rec: TokenRecord) -> str:
        return self.key.decrypt(rec.value_encrypted)

    def authenticate(self, value: str | None) -> Principal:
        if not value:
            raise Unauthorized(
                "Missing token: pass it as 'Authorization: Bearer <token>' or '?token=<token>'"
            )
        rec = self.catalog.token_by_hash(self.key.lookup_hash(value))
        if rec is None:
            raise Forbidden("Invalid token: it does not exist or was refreshed or deleted")
        workspace = self.catalog.workspace(rec.workspace_id)
        if workspace is None:
            raise Forbidden("Invalid token: its workspace no longer exists")
        scopes = tuple(Scope(s["type"], s.get("resource"), s.get("filter")) for s in rec.scopes)
        return Principal(workspace=workspace, token=rec, scopes=scopes)

    def public(self, rec: TokenRecord, *, with_value: bool = True) -> dict:
        out = {
            "id": rec.id,
            "name": rec.name,
            "description": rec.description,
            "scopes": rec.scopes,
            "origin": {"type": rec.origin} if rec.origin else {},
        }
        if with_value:
            out["token"] = self.value(rec)
        return out
