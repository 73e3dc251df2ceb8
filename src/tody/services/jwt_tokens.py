"""JWTs for per-tenant access: HS256, signed with the workspace admin token, never stored.

Claims as Tinybird documents them: `workspace_id`, `name`, `exp`, `scopes` (PIPES:READ or
DATASOURCES:READ on a resource, with `fixed_params` for pipes and a row `filter`) and optional
`limits.rps`. A verified JWT becomes a `Principal` like any static token; the verification is cached
until the token expires or the catalog changes (a refreshed admin token invalidates every JWT).
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jwt

from tody.catalog.store import TokenRecord, WorkspaceRecord, utcnow
from tody.services.errors import BadRequest, Forbidden
from tody.services.names import validate_name
from tody.services.tokens import (
    DATASOURCES_READ,
    PIPES_READ,
    TOKENS,
    Principal,
    Scope,
    TokenService,
)

# The signing key is the workspace admin token, whatever its length: that is the contract clients
# sign with. Short admin tokens are the operator's choice (`--admin-token`), so no warning per request.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)

JWT_SCOPES = (PIPES_READ, DATASOURCES_READ)
MAX_JWT_BYTES = 16_000


class JwtService:
    def __init__(self, tokens: TokenService):
        self.tokens = tokens
        self.catalog = tokens.catalog
        self._verified: dict[str, tuple[int, float, Principal]] = {}  # value -> (generation, exp, principal)
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[int, str | None]] = {}  # workspace -> (generation, signing key)

    @staticmethod
    def looks_like(value: str) -> bool:
        # static tokens are `p.<b64>.<secret>`; a JWT is `<b64 header>.<b64 claims>.<signature>`
        return value.startswith("ey") and value.count(".") == 2

    def signing_key(self, workspace: WorkspaceRecord) -> str | None:
        """The workspace admin token's value (decrypted once per catalog generation)."""
        generation = self.catalog.generation
        cached = self._keys.get(workspace.id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        key = self._signing_key(workspace)
        self._keys[workspace.id] = (generation, key)
        return key

    def _signing_key(self, workspace: WorkspaceRecord) -> str | None:
        rec = self.tokens.workspace_admin(workspace)
        return self.tokens.value(rec) if rec is not None else None

    # -- signing ---------------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        name: str,
        expiration_time: int,
        scopes: list[Mapping[str, Any]],
        limits: Mapping[str, Any] | None = None,
    ) -> str:
        """`POST /v0/tokens?expiration_time=…` with a JSON body: a signed JWT for this workspace."""
        principal.require(TOKENS)
        validate_name(name, "Token")
        if expiration_time <= time.time():
            raise BadRequest("expiration_time must be a Unix time (seconds) in the future")
        if not scopes:
            raise BadRequest(
                "A JWT needs at least one scope, e.g. {'type': 'PIPES:READ', 'resource': 'pipe'}"
            )
        clean = [self._claim_scope(s, BadRequest) for s in scopes]
        for scope in clean:
            as_scope = Scope(scope["type"], scope["resource"], scope.get("filter"))
            self.tokens.parse_scopes(principal, [str(as_scope)])  # resource exists, filter passes the gate
        claims: dict[str, Any] = {
            "workspace_id": principal.workspace.id,
            "name": name,
            "exp": int(expiration_time),
            "iat": int(time.time()),
            "scopes": clean,
        }
        if limits:
            claims["limits"] = {"rps": self._rps(limits, BadRequest)}
        key = self.signing_key(principal.workspace)
        if key is None:
            raise BadRequest("This workspace has no admin token to sign JWTs with")
        return jwt.encode(claims, key, algorithm="HS256")

    @staticmethod
    def _claim_scope(raw: object, error: type[Exception]) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise error("Each JWT scope must be an object like {'type': 'PIPES:READ', 'resource': 'pipe'}")
        kind = str(raw.get("type", "")).upper()
        kind = {"PIPE:READ": PIPES_READ, "DATASOURCE:READ": DATASOURCES_READ}.get(kind, kind)
        if kind not in JWT_SCOPES:
            raise error(
                f"JWT scope type '{raw.get('type')}' is not allowed; use PIPES:READ or DATASOURCES:READ"
            )
        resource = raw.get("resource")
        if not isinstance(resource, str) or not resource:
            raise error(f"A JWT scope of type {kind} needs a 'resource' (the pipe or data source name)")
        out: dict[str, Any] = {"type": kind, "resource": resource}
        fixed = raw.get("fixed_params")
        if fixed is not None:
            if kind != PIPES_READ or not isinstance(fixed, Mapping):
                raise error("'fixed_params' must be an object, and only on a PIPES:READ scope")
            for key, value in fixed.items():
                if not isinstance(value, str | int | float | bool | list):
                    raise error(f"fixed_params['{key}'] must be a string, number, boolean or list")
            out["fixed_params"] = dict(fixed)
        flt = raw.get("filter")
        if flt is not None:
            if not isinstance(flt, str):
                raise error("A JWT scope 'filter' must be an SQL expression in a string")
            if flt.strip():
                out["filter"] = flt
        return out

    @staticmethod
    def _rps(limits: object, error: type[Exception]) -> int:
        rps = limits.get("rps") if isinstance(limits, Mapping) else None
        if isinstance(rps, bool) or not isinstance(rps, int) or rps <= 0:
            raise error("limits.rps must be a positive whole number of requests per second")
        return rps

    # -- verifying -------------------------------------------------------------------------------

    def authenticate(self, value: str) -> Principal:
        generation = self.catalog.generation
        now = time.time()
        cached = self._verified.get(value)
        if cached is not None and cached[0] == generation and cached[1] > now:
            return cached[2]
        principal, exp = self._verify(value)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[value] = (generation, exp, principal)
        return principal

    def _verify(self, value: str) -> tuple[Principal, float]:
        if len(value) > MAX_JWT_BYTES:
            raise Forbidden(f"Invalid JWT: longer than {MAX_JWT_BYTES} bytes")
        try:
            unverified_whole = jwt.api_jwt.decode_complete(value, options={"verify_signature": False})
            header, unverified = unverified_whole["header"], unverified_whole["payload"]
        except jwt.InvalidTokenError as exc:
            raise Forbidden(f"Invalid token: not a static token and not a readable JWT ({exc})") from None
        if header.get("alg") != "HS256":
            raise Forbidden(f"Invalid JWT: it must be signed with HS256, not {header.get('alg')}")
        workspace_id = unverified.get("workspace_id")
        if not isinstance(workspace_id, str) or not workspace_id:
            raise Forbidden("Invalid JWT: the 'workspace_id' claim is missing")
        workspace = self.catalog.workspace(workspace_id)
        key = self.signing_key(workspace) if workspace is not None else None
        if workspace is None or key is None:
            raise Forbidden(f"Invalid JWT: workspace '{workspace_id[:64]}' does not exist on this server")
        try:
            claims = jwt.decode(
                value,
                key,
                algorithms=["HS256"],
                options={"require": ["exp", "workspace_id", "name", "scopes"]},
            )
        except jwt.ExpiredSignatureError:
            raise Forbidden("Invalid JWT: it has expired (its 'exp' is in the past)") from None
        except jwt.InvalidSignatureError:
            raise Forbidden(
                "Invalid JWT: the signature does not match; sign it with this workspace's admin token"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise Forbidden(f"Invalid JWT: the '{exc.claim}' claim is missing") from None
        except jwt.InvalidTokenError as exc:
            raise Forbidden(f"Invalid JWT: {exc}") from None
        raw_scopes = claims["scopes"]
        if not isinstance(raw_scopes, list) or not raw_scopes:
            raise Forbidden("Invalid JWT: 'scopes' must be a non-empty list")
        scopes = [self._claim_scope(s, Forbidden) for s in raw_scopes]
        rps = self._rps(claims["limits"], Forbidden) if claims.get("limits") else None
        name = str(claims["name"])[:256]
        digest = hashlib.sha256(value.encode()).hexdigest()[:24]
        now = utcnow()
        record = TokenRecord(
            id=f"jwt_{digest}",
            workspace_id=workspace.id,
            name=name,
            description="JWT",
            value_hash=digest,
            value_encrypted="",
            scopes=scopes,
            origin="JWT",
            created_at=now,
            updated_at=now,
        )
        principal = Principal(
            workspace=workspace,
            token=record,
            scopes=tuple(Scope(s["type"], s["resource"], s.get("filter")) for s in scopes),
            fixed_params={s["resource"]: s["fixed_params"] for s in scopes if "fixed_params" in s},
            rps=rps,
            is_jwt=True,
        )
        return principal, float(claims["exp"])
