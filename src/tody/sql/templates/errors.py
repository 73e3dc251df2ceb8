"""Errors and work limits of the template language.

Every limit is a plain module constant so the server can document them; each one, when crossed,
raises `TemplateError` (an HTTP 400) with a message that names the limit.
"""

from __future__ import annotations

MAX_TEMPLATE_CHARS = 256_000  # size of the template source
MAX_DEPTH = 50  # nested blocks ({% if %}/{% for %}) and nested brackets/calls in one expression
MAX_EXPRESSION_DEPTH = 100  # depth of one expression tree (e.g. a chain of 100 `+`)
MAX_ITERATIONS = 10_000  # {% for %} iterations, all loops of one render together
MAX_OUTPUT_CHARS = 1_000_000  # rendered SQL
MAX_STRING_CHARS = 1_000_000  # any string built while rendering
MAX_ITEMS = 100_000  # any list built while rendering, range() included
MAX_STEPS = 1_000_000  # expression evaluations in one render
MAX_WORK_CHARS = 50_000_000  # characters and items allocated by operators in one render
MAX_INT_BITS = 1024  # integers computed by templates (Int256 needs 256)


class TemplateError(ValueError):
    """The template or a request value is wrong: HTTP 400. The message names the parameter or construct."""


class TemplateHTTPError(Exception):
    """Raised by `error()` and `custom_error()` in a template: the endpoint answers `status` with
    `{"error": message}` (plus any extra string fields given to `custom_error`, in `body`).
    Only 4xx statuses are honoured; anything else becomes 400."""

    def __init__(self, message: str, status: object = 400, body: dict[str, object] | None = None):
        super().__init__(message)
        self.message = message
        self.status = clamp_status(status)
        self.body: dict[str, object] = {
            "error": message,
            **{k: v for k, v in (body or {}).items() if k != "error"},
        }

    def __str__(self) -> str:
        return self.message


def clamp_status(status: object) -> int:
    if isinstance(status, str) and status.strip().isdigit():
        status = int(status.strip())
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 499:
        return status
    return 400


def shorten(value: object, limit: int = 60) -> str:
    """A value as shown inside error messages: repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
