"""The dashboard's overview views."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.dashboard.errors import TAG

router = APIRouter(tags=[TAG], include_in_schema=False)
