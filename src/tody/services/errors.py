"""Errors the services raise. Each carries the HTTP status it maps to and a message for the user."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, **extra: object):
        super().__init__(message)
        self.message = message
        self.extra = extra  # more fields for the JSON error body (e.g. dependent_pipes)
        self.headers: dict[str, str] = {}  # more response headers (e.g. Retry-After)


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Timeout(ServiceError):
    status = 408


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class Unavailable(ServiceError):
    status = 503


class TemplateStatus(ServiceError):
    """An error raised on purpose by a template (`error()` / `custom_error()`), with its own 4xx status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
