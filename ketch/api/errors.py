"""Kubernetes `Status` errors: the right code and reason for every failure a client can cause."""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An error the apiserver answers with a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            st["details"] = self.details
        return st


def _details(kind: str, name: str | None, group: str = "") -> dict:
    d: dict[str, Any] = {"kind": kind}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(plural, group)} "{name}" not found', _details(plural, name, group))


def already_exists(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(plural, group)} "{name}" already exists',
                       _details(plural, name, group))


def conflict(plural: str, name: str, group: str = "", why: str = "") -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
                       _details(plural, name, group))


def invalid(kind: str, name: str, causes: list[dict], group: str = "") -> StatusError:
    """422 Invalid; causes are {reason, message, field} as Kubernetes sends them."""
    summary = ", ".join(c.get("summary") or c["message"] for c in causes) or "invalid object"
    if len(causes) > 1:
        summary = "[" + summary + "]"
    d = _details(kind, name, group)
    d["causes"] = [{k: v for k, v in c.items() if k != "summary"} for c in causes]
    return StatusError(422, "Invalid", f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}', d)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(message: str, plural: str = "", name: str = "", group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(plural, name, group) if plural else None)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(message: str = "the request is too large") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: '
                       f'application/json, application/yaml (got "{content_type}")')


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
