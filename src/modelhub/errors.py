"""The one error hierarchy. Transports map `code` to HTTP statuses and exit codes."""

from __future__ import annotations

from typing import Any


class ModelhubError(Exception):
    """Base of every error modelhub raises on purpose.

    `code` is stable and machine-readable; `message` is one line for a person;
    `details` holds structured context (the offending field, the existing version ...).
    """

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(ModelhubError):
    code = "not_found"


class Conflict(ModelhubError):
    code = "conflict"


class InvalidInput(ModelhubError):
    code = "invalid_input"


class Unauthenticated(ModelhubError):
    code = "unauthenticated"


class PermissionDenied(ModelhubError):
    code = "permission_denied"


class IllegalTransition(ModelhubError):
    code = "illegal_transition"


class IntegrityError(ModelhubError):
    """Stored bytes no longer match their digest, or a record contradicts another."""

    code = "integrity_error"


class UnsafeModel(ModelhubError):
    """A model file would execute code when loaded, and nobody trusted it."""

    code = "unsafe_model"


class Unavailable(ModelhubError):
    code = "unavailable"


class RateLimited(ModelhubError):
    code = "rate_limited"


class TrainingDiverged(ModelhubError):
    """The loss became NaN or infinite: the run cannot go on from there."""

    code = "training_diverged"


class PayloadTooLarge(ModelhubError):
    code = "payload_too_large"


class InferenceFailed(ModelhubError):
    """The model raised while computing one request: that request fails, nothing else."""

    code = "inference_failed"


ERRORS_BY_CODE: dict[str, type[ModelhubError]] = {
    cls.code: cls
    for cls in (
        ModelhubError,
        NotFound,
        Conflict,
        InvalidInput,
        Unauthenticated,
        PermissionDenied,
        IllegalTransition,
        IntegrityError,
        UnsafeModel,
        Unavailable,
        RateLimited,
        TrainingDiverged,
        PayloadTooLarge,
        InferenceFailed,
    )
}


def error_from_dict(payload: dict[str, Any]) -> ModelhubError:
    """Rebuild the error a server sent, so clients raise the same class."""
    cls = ERRORS_BY_CODE.get(str(payload.get("code")), ModelhubError)
    return cls(str(payload.get("message", "unknown error")), dict(payload.get("details") or {}))
