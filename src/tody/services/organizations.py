"""Organizations: their workspaces and their admins (who act as admin in every one of them)."""

from __future__ import annotations

from tody.catalog.store import Catalog, OrganizationRecord
from tody.services.errors import BadRequest, Conflict, NotFound
from tody.services.tokens import UserPrincipal
from tody.services.users import UserService


class OrganizationService:
    def __init__(self, catalog: Catalog, users: UserService):
        self.catalog = catalog
        self.users = users

    def get(self, actor: UserPrincipal, organization_id: str) -> OrganizationRecord:
        """An organization the actor administers; any other is 404."""
        org = next((o for o in self.catalog.organizations() if o.id == organization_id), None)
        if org is None or not self.catalog.is_org_admin(org.id, actor.user.id):
            raise NotFound(f"Organization '{organization_id[:80]}' not found")
        return org

    def describe(self, actor: UserPrincipal, organization_id: str) -> dict:
        org = self.get(actor, organization_id)
        return {
            "id": org.id,
            "name": org.name,
            "created_at": org.created_at.isoformat(sep=" "),
            "admins": [{"id": u.id, "email": u.email} for u in self.catalog.org_admins(org.id)],
            "workspaces": len(self.workspaces(actor, organization_id)),
        }

    def workspaces(self, actor: UserPrincipal, organization_id: str) -> list[dict]:
        org = self.get(actor, organization_id)
        return [
            {"id": w.id, "name": w.name, "created_at": w.created_at.isoformat(sep=" ")}
            for w in self.catalog.workspaces()
            if w.organization_id == org.id
        ]

    def change_admins(
        self, actor: UserPrincipal, organization_id: str, operation: str, emails: list[str]
    ) -> list[dict]:
        org = self.get(actor, organization_id)
        if operation not in ("add", "remove"):
            raise BadRequest(f"Unknown operation '{operation}': use add or remove")
        if not emails:
            raise BadRequest("Name the users: users=<email>[,<email>…]")
        for email in emails:
            user = self.users.find(email)
            if operation == "remove":
                admins = [u.id for u in self.catalog.org_admins(org.id)]
                if admins == [user.id]:
                    raise Conflict(f"{user.email} is the last admin of organization '{org.name}'")
            self.catalog.set_org_admin(org.id, user.id, operation == "add")
        return [{"id": u.id, "email": u.email} for u in self.catalog.org_admins(org.id)]
