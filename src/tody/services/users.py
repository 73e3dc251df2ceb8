"""Users: an email, a password kept as a slow hash, and a user token (ADMIN_USER, no workspace).

Organization admins create users (sign-up is off unless `allow_signup`); the first start creates
the first user, admin of the default organization and of every workspace already there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid

from tody.catalog.store import Catalog, OrganizationRecord, UserRecord, utcnow
from tody.services.errors import BadRequest, Conflict, Forbidden, NotFound
from tody.services.tokens import ADMIN_USER, USER_TOKEN, Scope, TokenService, UserPrincipal

# scrypt: 2^15 x 8 x 1 takes ~50-100 ms and 32 MB per guess, the OWASP baseline for scrypt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_EMAIL = re.compile(
    r"[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}|[^@\s\x00-\x1f]{1,64}@localhost"
)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    computed = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=64 * 1024 * 1024
    )
    return hmac.compare_digest(computed, base64.b64decode(digest))


_UNKNOWN: list[str] = []


def _unknown_user_hash() -> str:
    if not _UNKNOWN:
        _UNKNOWN.append(hash_password(secrets.token_hex(16)))
    return _UNKNOWN[0]


def check_email(email: str | None) -> str:
    email = (email or "").strip()
    if not _EMAIL.fullmatch(email):
        raise BadRequest(f"'{email[:80]}' is not an email address")
    return email


class UserService:
    def __init__(self, catalog: Catalog, tokens: TokenService, *, allow_signup: bool = False):
        self.catalog = catalog
        self.tokens = tokens
        self.allow_signup = allow_signup

    def create(self, email: str, password: str, *, token: str | None = None) -> tuple[UserRecord, str]:
        """A user and its user token (the value is returned once more by `token_value`)."""
        email = check_email(email)
        if not (MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD):
            raise BadRequest(f"The password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        if self.catalog.user_by_email(email):
            raise Conflict(f"A user with email {email} already exists")
        rec = UserRecord(
            id=str(uuid.uuid4()), email=email, password_hash=hash_password(password), created_at=utcnow()
        )
        self.catalog.add_user(rec)
        value = self._user_token(rec, token)
        return rec, value

    def _user_token(self, user: UserRecord, value: str | None = None) -> str:
        _, value = self.tokens.create(
            None,
            USER_TOKEN,
            [Scope(ADMIN_USER)],
            description=f"User token of {user.email}",
            value=value,
            user_id=user.id,
        )
        return value

    def token_value(self, user: UserRecord) -> str:
        rec = next((t for t in self.catalog.user_tokens(user.id) if t.workspace_id is None), None)
        return self.tokens.value(rec) if rec is not None else self._user_token(user)

    def login(self, email: str, password: str) -> UserRecord:
        """Email and password → the user (for the UI's session); one message for every failure."""
        user = self.catalog.user_by_email(email or "")
        stored = user.password_hash if user else _unknown_user_hash()  # the same cost either way
        if not verify_password(password or "", stored) or user is None:
            raise Forbidden("Wrong email or password")
        return user

    # -- the Users API (organization admins) -----------------------------------------------------

    def administered(self, actor: UserPrincipal) -> list[OrganizationRecord]:
        return [o for o in self.catalog.organizations() if self.catalog.is_org_admin(o.id, actor.user.id)]

    def require_org_admin(
        self, actor: UserPrincipal, organization_id: str | None = None
    ) -> OrganizationRecord:
        orgs = self.administered(actor)
        if organization_id is not None:
            orgs = [o for o in orgs if o.id == organization_id]
        if not orgs:
            raise Forbidden("Only an organization admin can do this (with their user token)")
        return orgs[0]

    def create_by(self, actor: UserPrincipal | None, email: str, password: str) -> tuple[UserRecord, str]:
        if actor is None and not self.allow_signup:
            raise Forbidden("Sign-up is off on this server: an organization admin creates users")
        if actor is not None:
            self.require_org_admin(actor)
        return self.create(email, password)

    def find(self, email_or_id: str) -> UserRecord:
        user = self.catalog.user(email_or_id) or self.catalog.user_by_email(email_or_id)
        if user is None:
            raise NotFound(f"User '{email_or_id[:80]}' not found")
        return user

    def managed(self, actor: UserPrincipal) -> list[UserRecord]:
        """Users an organization admin manages: those tied to its organizations (admins, members of
        their workspaces) and those tied to none yet. Users of other organizations stay out of view."""
        mine = {o.id for o in self.administered(actor)}
        out = []
        for user in self.catalog.users():
            orgs = self._organizations_of(user)
            if not orgs or orgs & mine:
                out.append(user)
        return out

    def _organizations_of(self, user: UserRecord) -> set[str]:
        orgs = {o.id for o in self.catalog.organizations() if self.catalog.is_org_admin(o.id, user.id)}
        for member in self.catalog.memberships(user.id):
            workspace = self.catalog.workspace(member.workspace_id)
            if workspace is not None:
                orgs.add(workspace.organization_id)
        return orgs

    def delete_by(self, actor: UserPrincipal, email_or_id: str) -> None:
        mine = {o.id for o in self.administered(actor)}
        if not mine:
            raise Forbidden("Only an organization admin can do this (with their user token)")
        user = self.find(email_or_id)
        if user not in self.managed(actor):
            raise NotFound(f"User '{email_or_id[:80]}' not found")
        if user.id == actor.user.id:
            raise Conflict("You cannot delete yourself; another organization admin can")
        if not self._organizations_of(user) <= mine:
            raise Forbidden(f"{user.email} also belongs to another organization; its admins must remove them")
        for member in self.catalog.memberships(user.id):
            admins = [m.user_id for m in self.catalog.members(member.workspace_id) if m.role == "admin"]
            if admins == [user.id]:
                workspace = self.catalog.workspace(member.workspace_id)
                name = workspace.name if workspace else member.workspace_id
                raise Conflict(f"{user.email} is the last admin of workspace '{name}'; name another first")
        self.catalog.delete_user(user.id)

    def describe(self, user: UserRecord) -> dict:
        return {"id": user.id, "email": user.email, "created_at": user.created_at.isoformat(sep=" ")}
