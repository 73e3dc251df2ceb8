"""Workspace members and their roles, and the workspaces a user reaches.

Each member has a personal token in each of its workspaces. The token stores no scopes: they come
from the member's role when the token is used (`TokenService.role_of`), so changing a role changes
what the token may do at once, and removing the member deletes the token.
"""

from __future__ import annotations

from tody.catalog.store import Catalog, MemberRecord, UserRecord, WorkspaceRecord
from tody.services.errors import BadRequest, Conflict, Forbidden, NotFound
from tody.services.tokens import ROLES, Principal, TokenService, UserPrincipal
from tody.services.users import UserService

Actor = Principal | UserPrincipal


class MemberService:
    def __init__(self, catalog: Catalog, tokens: TokenService, users: UserService):
        self.catalog = catalog
        self.tokens = tokens
        self.users = users

    # -- who may act on a workspace ----------------------------------------------------------------

    def workspace(self, workspace_id_or_name: str) -> WorkspaceRecord:
        found = self.catalog.workspace(workspace_id_or_name) or self.catalog.workspace_by_name(
            workspace_id_or_name
        )
        if found is None:
            raise NotFound(f"Workspace '{workspace_id_or_name[:80]}' not found")
        return found

    def role(self, actor: Actor, workspace: WorkspaceRecord) -> str | None:
        """The actor's role in `workspace`: a user's (member or org admin), or a workspace token's."""
        if isinstance(actor, UserPrincipal):
            return self.tokens.role_of(workspace, actor.user.id)
        if actor.workspace.id != workspace.id:
            return None
        if actor.role is not None:
            return actor.role
        return "admin" if actor.is_admin else "viewer"

    def visible(self, actor: Actor, workspace_id_or_name: str) -> WorkspaceRecord:
        """A workspace the actor belongs to; any other is 404 (its existence is not revealed)."""
        try:
            workspace = self.workspace(workspace_id_or_name)
        except NotFound:
            workspace = None
        if workspace is None or self.role(actor, workspace) is None:
            raise NotFound(f"Workspace '{workspace_id_or_name[:80]}' not found")
        return workspace

    def require_admin(self, actor: Actor, workspace_id_or_name: str) -> WorkspaceRecord:
        workspace = self.visible(actor, workspace_id_or_name)
        if self.role(actor, workspace) != "admin":
            raise Forbidden(f"Only an admin of workspace '{workspace.name}' can do this")
        return workspace

    # -- personal tokens -------------------------------------------------------------------------

    def personal_token(self, workspace: WorkspaceRecord, user: UserRecord) -> str:
        """The member's own token for the workspace, made the first time it is asked for."""
        existing = next(
            (t for t in self.catalog.user_tokens(user.id) if t.workspace_id == workspace.id), None
        )
        if existing is not None:
            return self.tokens.value(existing)
        _, value = self.tokens.create(
            workspace,
            f"{user.email} token",
            [],
            description=f"Personal token of {user.email}: its rights follow the member's role",
            user_id=user.id,
        )
        return value

    def _listed_token(self, workspace: WorkspaceRecord, user: UserRecord) -> str | None:
        has_token = any(t.workspace_id == workspace.id for t in self.catalog.user_tokens(user.id))
        if has_token or self.catalog.member(workspace.id, user.id) is not None:
            return self.personal_token(workspace, user)
        return None

    def token_for(self, actor: Actor, workspace: WorkspaceRecord) -> str:
        """`?with_token=true`: the caller's own token for the workspace."""
        if isinstance(actor, UserPrincipal):
            return self.personal_token(workspace, actor.user)
        return self.tokens.value(actor.token) if not actor.is_jwt else ""

    # -- members ---------------------------------------------------------------------------------

    def members(self, actor: Actor, workspace_id_or_name: str) -> list[dict]:
        workspace = self.visible(actor, workspace_id_or_name)
        out = []
        for member in self.catalog.members(workspace.id):
            user = self.catalog.user(member.user_id)
            if user is not None:
                out.append({"id": user.id, "email": user.email, "role": member.role})
        return out

    def change(
        self, actor: Actor, workspace_id_or_name: str, operation: str, emails: list[str], role: str | None
    ) -> list[dict]:
        """`PUT /v0/workspaces/{id}/users/`: add (with a role, guest by default), remove, change_role."""
        workspace = self.require_admin(actor, workspace_id_or_name)
        if operation not in ("add", "remove", "change_role"):
            raise BadRequest(f"Unknown operation '{operation}': use add, remove or change_role")
        if not emails:
            raise BadRequest("Name the users: users=<email>[,<email>…]")
        if operation != "remove":
            role = role or ("guest" if operation == "add" else None)
            if role not in ROLES:
                raise BadRequest(f"Unknown role '{role}': use {', '.join(ROLES)}")
        users = [self.users.find(email) for email in emails]
        for user in users:
            member = self.catalog.member(workspace.id, user.id)
            if operation == "add" and member is not None and member.role == role:
                continue
            if operation != "add" and member is None:
                raise NotFound(f"{user.email} is not a member of workspace '{workspace.name}'")
            if operation != "add" or member is not None:
                self._keep_an_admin(workspace, user, None if operation == "remove" else role)
            self.catalog.set_member(workspace.id, user.id, None if operation == "remove" else role)
        return self.members(actor, workspace.id)

    def _keep_an_admin(self, workspace: WorkspaceRecord, user: UserRecord, role: str | None) -> None:
        admins = [m for m in self.catalog.members(workspace.id) if m.role == "admin"]
        if role != "admin" and [m.user_id for m in admins] == [user.id]:
            raise Conflict(
                f"{user.email} is the last admin of workspace '{workspace.name}'; name another first"
            )

    def add(self, workspace: WorkspaceRecord, user: UserRecord, role: str) -> MemberRecord:
        self.catalog.set_member(workspace.id, user.id, role)
        member = self.catalog.member(workspace.id, user.id)
        assert member is not None
        return member

    # -- the workspaces of a user ----------------------------------------------------------------

    def reachable(self, actor: Actor) -> list[tuple[WorkspaceRecord, str]]:
        """(workspace, role) for every workspace the actor reaches."""
        if not isinstance(actor, UserPrincipal):
            return [(actor.workspace, self.role(actor, actor.workspace) or "viewer")]
        out = []
        for workspace in self.catalog.workspaces():
            role = self.tokens.role_of(workspace, actor.user.id)
            if role is not None:
                out.append((workspace, role))
        return out

    def describe(self, workspace: WorkspaceRecord, role: str, token: str | None = None) -> dict:
        out = {
            "id": workspace.id,
            "name": workspace.name,
            "role": role,
            "organization_id": workspace.organization_id,
            "plan": "custom",
            "is_branch": False,
            "main": None,
            "created_at": workspace.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        }
        if token:
            out["token"] = token
        return out

    def user_workspaces(self, actor: Actor) -> dict:
        """`GET /v0/user/workspaces/`: with a user token, every workspace of the user with its role and
        personal token; with a workspace token, that workspace (its token shown to admins)."""
        if isinstance(actor, UserPrincipal):
            # a token for each workspace the user is a member of; an organization admin's other
            # workspaces get one only when asked for (`GET /v0/workspaces/{id}?with_token=true`)
            entries = [
                self.describe(ws, role, self._listed_token(ws, actor.user))
                for ws, role in self.reachable(actor)
            ]
            return {"id": actor.user.id, "email": actor.user.email, "workspaces": entries}
        role = self.role(actor, actor.workspace) or "viewer"
        token = self.tokens.value(actor.token) if actor.is_admin and not actor.is_jwt else None
        owner = actor.user.id if actor.user else actor.token.id
        return {"id": owner, "workspaces": [self.describe(actor.workspace, role, token)]}
