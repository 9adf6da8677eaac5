"""docs/permissions.md and the permission table in code say the same thing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelhub.domain.auth import OWNER_ONLY_FOR, PERMISSIONS, Action, Role

DOC = Path(__file__).resolve().parents[3] / "docs" / "permissions.md"


def documented_actions() -> dict[str, tuple[set[str], bool]]:
    text = DOC.read_text()
    section = text.split("## Actions", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[set[str], bool]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("action", "---"):
            continue
        roles = set() if cells[1].startswith("everyone") else set(re.split(r",\s*", cells[1]))
        rows[cells[0]] = (roles, cells[2] == "yes")
    return rows


def test_every_action_is_documented_with_its_roles() -> None:
    documented = documented_actions()
    assert set(documented) == {a.value for a in Action}
    for action, roles in PERMISSIONS.items():
        doc_roles, owner_only = documented[action.value]
        assert doc_roles == {r.value for r in roles}, action
        assert owner_only == (Role.DEVELOPER in OWNER_ONLY_FOR.get(action, frozenset())), action


def test_the_route_table_names_only_real_actions() -> None:
    section = DOC.read_text().split("## Which route needs what", 1)[1].split("\n## ", 1)[0]
    named = {
        line.rsplit("|", 2)[1].strip()
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith(("| route", "| ---"))
    }
    # Trust, the gate override and running code are checks on routes guarded by other
    # actions (a flag, or the script trainer in a pipeline).
    flags = {Action.MODELS_TRUST.value, Action.MODELS_OVERRIDE_GATE.value, Action.CODE_RUN.value}
    assert named == {a.value for a in Action} - flags


def test_the_dashboard_table_names_each_page_with_its_action(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute

    from modelhub.api.app import create_app
    from modelhub.api.security import permission_of
    from modelhub.dashboard.errors import TAG
    from modelhub.settings import Settings

    section = DOC.read_text().split("## The dashboard", 1)[1].split("\n## ", 1)[0]
    rows = [
        line.rsplit("|", 2)
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith(("| pages", "| ---"))
    ]
    documented = {row[1].strip(): row[0] for row in rows}

    def walk(routes: list[Any]) -> Iterator[Any]:  # FastAPI keeps included routers nested
        for route in routes:
            nested = getattr(route, "original_router", None)
            yield from walk(nested.routes) if nested is not None else [route]

    checked = 0
    app = create_app(Settings(home=tmp_path / "home"))
    for route in walk(app.routes):
        if not isinstance(route, APIRoute) or TAG not in (route.tags or []):
            continue
        [action] = [p for d in route.dependant.dependencies if (p := permission_of(d.call))]
        # The table shortens shared prefixes to `...` and names ids `{id}`: the route's
        # last segment must be in its action's row.
        tail = re.sub(r"\{(\w+_)?id\}", "{id}", route.path.rstrip("/").rsplit("/", 1)[-1])
        tail = tail.replace("{path:path}", "{path}") or "GET /`"
        assert tail in documented.get(action.value, ""), (route.path, action.value)
        checked += 1
    assert checked >= 40
