"""Error code -> HTTP status, shared by the control plane (FastAPI) and the data plane.

Kept free of FastAPI so a replica process imports it cheaply.
"""

from __future__ import annotations

HTTP_STATUS: dict[str, int] = {
    "invalid_input": 400,
    "unsafe_model": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "illegal_transition": 409,
    "integrity_error": 500,
    "unavailable": 503,
    "rate_limited": 429,
    "training_diverged": 422,
    "payload_too_large": 413,
    "inference_failed": 500,
    "error": 500,
}
