"""Data sources shared read-only from one workspace (the origin) with others (destinations).

In a destination a shared data source is read as `<origin workspace>.<data source>`, in SQL and in
pipes, through the destination token's own scopes and row filters; it is written, altered and
dropped only in its origin. Unsharing while destination pipes read it is a 409 naming them.
"""

from __future__ import annotations

from tody.catalog.store import Catalog, DatasourceRecord, WorkspaceRecord
from tody.services.errors import BadRequest, Conflict, NotFound
from tody.services.members import Actor, MemberService
from tody.services.pipes import PipeService, reads
from tody.services.tokens import Principal, UserPrincipal


def shared_name(origin: WorkspaceRecord, rec: DatasourceRecord) -> str:
    return f"{origin.name}.{rec.name}"


class SharingService:
    def __init__(self, catalog: Catalog, members: MemberService, pipes: PipeService):
        self.catalog = catalog
        self.members = members
        self.pipes = pipes

    def destinations(self, rec: DatasourceRecord) -> list[WorkspaceRecord]:
        found = (self.catalog.workspace(s.workspace_id) for s in self.catalog.shares_of(rec.id))
        return [w for w in found if w is not None]

    def readers(
        self, origin: WorkspaceRecord, rec: DatasourceRecord, destination: WorkspaceRecord
    ) -> list[str]:
        """Pipes of `destination` that read the shared data source."""
        name = shared_name(origin, rec)
        return sorted(p.name for p in self.catalog.pipes(destination.id).values() if name in reads(p))

    def outside_readers(self, origin: WorkspaceRecord) -> list[str]:
        """`<destination>.<pipe>` for every pipe elsewhere that reads a data source `origin` shares."""
        found = []
        for rec in self.catalog.datasources(origin.id).values():
            for destination in self.destinations(rec):
                found.extend(f"{destination.name}.{pipe}" for pipe in self.readers(origin, rec, destination))
        return sorted(found)

    # -- sharing and unsharing -------------------------------------------------------------------

    def _parties(
        self, actor: Actor, name: str, origin_id: str | None, destination: str | None
    ) -> tuple[WorkspaceRecord, DatasourceRecord, WorkspaceRecord]:
        if isinstance(actor, UserPrincipal):
            if not origin_id:
                raise BadRequest("Pass origin_workspace_id: the workspace that owns the data source")
            origin = self.members.require_admin(actor, origin_id)
        else:
            origin = self.members.require_admin(actor, origin_id or actor.workspace.id)
        rec = self.catalog.datasource(origin.id, name)
        if rec is None:
            raise NotFound(f"Data Source '{name}' not found in workspace '{origin.name}'")
        if not destination:
            raise BadRequest("Pass destination_workspace_id or destination_workspace_name")
        target = self.catalog.workspace(destination) or self.catalog.workspace_by_name(destination)
        reachable = target is not None and (
            self.members.role(actor, target) is not None
            if isinstance(actor, UserPrincipal)
            else target.organization_id == origin.organization_id
        )
        if target is None or not reachable:
            raise NotFound(f"Workspace '{destination[:80]}' not found")
        if target.id == origin.id:
            raise BadRequest("A data source cannot be shared with its own workspace")
        return origin, rec, target

    def share(self, actor: Actor, name: str, origin_id: str | None, destination: str | None) -> dict:
        origin, rec, target = self._parties(actor, name, origin_id, destination)
        self.catalog.set_share(rec.id, target.id, True)
        return self.describe(origin, rec)

    def unshare(
        self, actor: Actor, name: str, origin_id: str | None, destination: str | None, *, force: bool = False
    ) -> dict:
        origin, rec, target = self._parties(actor, name, origin_id, destination)
        if not any(s.workspace_id == target.id for s in self.catalog.shares_of(rec.id)):
            raise NotFound(f"Data Source '{rec.name}' is not shared with workspace '{target.name}'")
        readers = self.readers(origin, rec, target)
        if readers and not force:
            raise Conflict(
                f"Pipes of workspace '{target.name}' read {shared_name(origin, rec)}: {', '.join(readers)}; "
                "remove them first or pass force=true (they stop working)",
                dependent_pipes=readers,
            )
        self.catalog.set_share(rec.id, target.id, False)
        return self.describe(origin, rec)

    def share_with_names(self, actor: Actor, rec: DatasourceRecord, names: list[str]) -> None:
        """`SHARED_WITH` of a .datasource file: the listed workspaces, and only them."""
        origin = self.catalog.workspace(rec.workspace_id)
        assert origin is not None
        wanted = set()
        for name in names:
            _, _, target = self._parties(actor, rec.name, origin.id, name)
            wanted.add(target.id)
            self.catalog.set_share(rec.id, target.id, True)
        for share in self.catalog.shares_of(rec.id):
            if share.workspace_id not in wanted:
                target = self.catalog.workspace(share.workspace_id)
                if target is not None and not self.readers(origin, rec, target):
                    self.catalog.set_share(rec.id, share.workspace_id, False)

    def on_create(self, principal: Actor, rec: DatasourceRecord, names: list[str]) -> None:
        """A data source created from a .datasource file with `SHARED_WITH`."""
        if names:
            self.share_with_names(principal, rec, names)

    def readable_shared(self, principal: Principal) -> list[tuple[WorkspaceRecord, DatasourceRecord]]:
        """Shared data sources the token may read, for the destination's listing."""
        return [
            (origin, rec)
            for origin, rec in self.catalog.shared_into(principal.workspace.id)
            if principal.can_read_datasource(shared_name(origin, rec))
        ]

    def describe(self, origin: WorkspaceRecord, rec: DatasourceRecord) -> dict:
        return {
            "id": rec.id,
            "name": rec.name,
            "origin_workspace": {"id": origin.id, "name": origin.name},
            "shared_with": [{"id": w.id, "name": w.name} for w in self.destinations(rec)],
        }

    def dependents(self, workspace: WorkspaceRecord, rec: DatasourceRecord) -> list[str]:
        """A data source dependency check: pipes of other workspaces reading it (blocks its drop)."""
        return [
            f"{destination.name}.{pipe}"
            for destination in self.destinations(rec)
            for pipe in self.readers(workspace, rec, destination)
        ]
