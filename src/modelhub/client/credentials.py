"""Where a client finds its server and token when it is not told."""

from __future__ import annotations

from modelhub.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8400"


def resolve_token(settings: Settings) -> str | None:
    """MODELHUB_TOKEN, else the token file in home, else the first admin's token file."""
    if settings.token:
        return settings.token
    for path in (settings.token_file, settings.admin_token_file):
        try:
            return path.read_text().strip() or None
        except OSError:
            continue
    return None
