"""docs/permissions.md and the permission table in code say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

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
