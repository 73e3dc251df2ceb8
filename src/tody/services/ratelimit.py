"""Request rate limits with the headers Tinybird's clients read.

A limit is N requests per window (one second by default) per key, counted in fixed windows: cheap,
thread-safe, and the three headers describe it exactly. Every answer carries X-RateLimit-Limit,
X-RateLimit-Remaining and X-RateLimit-Reset; a refusal adds Retry-After (whole seconds, at least 1).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from tody.services.errors import ServiceError


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the window restarts

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(max(1, math.ceil(self.reset))),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.reset)))
        return out


class RateLimited(ServiceError):
    status = 429

    def __init__(self, message: str, decision: RateDecision):
        super().__init__(message)
        self.decision = decision
        self.headers = decision.headers()


class RateLimiter:
    """`limit` requests per `window` seconds per key; a limit of 0 means unlimited."""

    def __init__(self, limit: int, window: float = 1.0, *, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, requests in it)

    def hit(self, key: str, limit: int | None = None) -> RateDecision | None:
        """Count one request against `limit` (default: this limiter's); None when unlimited."""
        limit = self.limit if limit is None else limit
        if limit <= 0:
            return None
        now = self._clock()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            allowed = used < limit
            if allowed:
                used += 1
            self._windows[key] = (start, used)
            if len(self._windows) > 10_000:  # forget idle keys
                cutoff = now - self.window
                self._windows = {k: v for k, v in self._windows.items() if v[0] >= cutoff}
        return RateDecision(allowed, limit, limit - used, start + self.window - now)

    def check(self, key: str, what: str, limit: int | None = None) -> RateDecision | None:
        """Count one request and raise RateLimited when it is over the limit."""
        decision = self.hit(key, limit)
        if decision is not None and not decision.allowed:
            raise RateLimited(
                f"Too many requests: {what} accepts {decision.limit} requests per "
                f"{self.window:g} s; retry in {max(1, math.ceil(decision.reset))} s",
                decision,
            )
        return decision


def tightest(decisions: list[RateDecision]) -> RateDecision:
    """Of the limits one request counted against, the one closest to refusing (reported in headers)."""
    return min(decisions, key=lambda d: (d.allowed, d.remaining, -d.reset))


class RequestLimits:
    """Requests per second per token (a JWT's own `limits.rps` first) and per endpoint. Defaults come
    from the server settings; a workspace may set its own (`PUT /v0/workspace/limits`)."""

    def __init__(self, token_rps: int, endpoint_rps: int):
        self.token_rps = token_rps
        self.endpoint_rps = endpoint_rps
        self._tokens = RateLimiter(token_rps)
        self._endpoints = RateLimiter(endpoint_rps)

    def token(self, principal: Any) -> RateDecision | None:
        limit = principal.rps or principal.workspace.limits.get("token_rps", self.token_rps)
        return self._tokens.check(principal.token.id, f"the token '{principal.token.name}'", limit)

    def endpoint(self, principal: Any, pipe: Any) -> RateDecision | None:
        limits = principal.workspace.limits
        limit = limits.get("endpoints", {}).get(pipe.id, limits.get("endpoint_rps", self.endpoint_rps))
        return self._endpoints.check(pipe.id, f"the endpoint '{pipe.name}'", limit)
