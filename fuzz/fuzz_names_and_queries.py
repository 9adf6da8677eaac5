"""Coverage-guided fuzzing of names, selectors, labels, tags and search queries (issue 19).

    python fuzz/fuzz_names_and_queries.py fuzz/corpus/names_and_queries/ -max_total_time=60

libFuzzer adds what it finds to the first folder it is given; to keep the committed
seeds small, name a scratch folder first:
`... /tmp/names_and_queries fuzz/corpus/names_and_queries/ ...`.

The first byte picks a parser; the rest is its text (decoded with surrogateescape,
as a command-line argument is). The search runs on a real registry over a SQLite
file in a temporary folder. Anything but a result or a ModelhubError is a crash.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from modelhub.domain.auth import Caller, Role
    from modelhub.domain.names import (
        check_alias,
        check_label,
        check_license,
        check_model_name,
        check_relative_path,
        parse_ref,
        parse_tags,
        parse_version_number,
    )
    from modelhub.domain.queries import VersionQuery
    from modelhub.errors import ModelhubError
    from modelhub.services import build_services
    from modelhub.services.datasets import parse_dataset_ref
    from modelhub.settings import Settings

ADMIN = Caller(name="fuzz", role=Role.ADMIN)
SERVICES = build_services(Settings(home=Path(tempfile.mkdtemp(prefix="fuzz-names-"))))


def search(text: str) -> object:
    """`text` split on '|' as search text, name, tag, limit and offset."""
    parts = [*text.split("|"), "", "", "", "", ""]
    ints = []
    for part in parts[3:5]:
        digits = part.strip()[:40]
        ints.append(int(digits) if digits.isascii() and digits.lstrip("-").isdigit() else 1)
    request = VersionQuery(
        text=parts[0] or None,
        name=parts[1] or None,
        tags=parse_tags([parts[2]]) if parts[2] else {},
        limit=ints[0],
        offset=ints[1],
    )
    return SERVICES.registry.search(request)


def audit_since(text: str) -> object:
    return SERVICES.audit.list(ADMIN, since=text or None)


PARSERS = [
    check_model_name,
    check_alias,
    check_label,
    check_license,
    check_relative_path,
    parse_ref,
    parse_version_number,
    parse_dataset_ref,
    lambda text: parse_tags(text.split(",")),
    search,
    audit_since,
]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    parser = PARSERS[data[0] % len(PARSERS)]
    try:
        parser(data[1:].decode("utf-8", "surrogateescape"))
    except ModelhubError:
        return


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
