"""Every error code has one HTTP status and one exit code, and round-trips."""

from __future__ import annotations

from modelhub.cli.context import EXIT_CODES
from modelhub.errors import ERRORS_BY_CODE, error_from_dict
from modelhub.web.status import HTTP_STATUS


def test_every_code_has_a_status_and_an_exit_code() -> None:
    assert set(ERRORS_BY_CODE) == set(HTTP_STATUS) == set(EXIT_CODES)
    assert all(400 <= status < 600 for status in HTTP_STATUS.values())
    assert EXIT_CODES["error"] == 1 and 0 not in EXIT_CODES.values()


def test_errors_round_trip_through_their_json() -> None:
    for code, cls in ERRORS_BY_CODE.items():
        rebuilt = error_from_dict(cls("boom", {"k": 1}).to_dict())
        assert type(rebuilt) is cls and rebuilt.code == code
        assert (rebuilt.message, rebuilt.details) == ("boom", {"k": 1})
