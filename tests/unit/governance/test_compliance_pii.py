"""The personal-data scan: every planted value found at its row, none of them reported."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest

from modelhub.governance.frames import read_frame
from modelhub.governance.pii import (
    MAX_CELL_CHARS,
    find_in_text,
    iban_valid,
    luhn_valid,
    scan_frame,
)


def with_luhn_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable")


def iban_for(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def grouped(text: str, sep: str = " ") -> str:
    return sep.join(text[i : i + 4] for i in range(0, len(text), 4))


def planted_values(rng: random.Random) -> dict[str, list[str]]:
    cards = [
        grouped(with_luhn_digit("4" + "".join(rng.choice("0123456789") for _ in range(14)))),
        grouped(with_luhn_digit("5" + "".join(rng.choice("0123456789") for _ in range(14))), "-"),
        with_luhn_digit("37" + "".join(rng.choice("0123456789") for _ in range(12))),
    ]
    ibans = [
        grouped(iban_for("DE", "".join(rng.choice("0123456789") for _ in range(18)))),
        iban_for("GB", "WEST" + "".join(rng.choice("0123456789") for _ in range(14))),
        iban_for("FR", "".join(rng.choice("0123456789") for _ in range(23))),
    ]
    return {
        "email": ["jane.doe@example.com", "o.brien+news@mail.example.co.uk"],
        "phone": ["+44 20 7946 0958", "(415) 555-2671", "+49 30 901820", "07700 900123"],
        "payment_card": cards,
        "iban": ibans,
        "us_ssn": ["123-45-6789", "078-05-1120"],
        "uk_nino": ["AB 12 34 56 C", "JG103759A"],
    }


FILLER = [
    "the order shipped on 2024-01-15 at 10:30",
    "total 1234.56 for 3 items, ref 55123",
    "version 1.2.3 build 20240115",
    "great service, would buy again",
    "ticket #88231 closed",
]


@pytest.fixture(scope="module")
def planted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, list[int]], list[str]]:
    """A CSV of 400 rows; each planted value in its own row, in a sentence."""
    rng = random.Random(12)
    values = planted_values(rng)
    rows: list[dict[str, object]] = [
        {"id": i, "text": rng.choice(FILLER), "note": rng.choice(FILLER)} for i in range(400)
    ]
    expected: dict[str, list[int]] = {}
    free = list(range(400))
    rng.shuffle(free)
    for kind, found in values.items():
        for value in found:
            index = free.pop()
            column = rng.choice(["text", "note"])
            rows[index][column] = f"contact: {value}, thanks"
            expected.setdefault(kind, []).append(index + 1)
    path = tmp_path_factory.mktemp("pii") / "planted.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    every = [v for found in values.values() for v in found]
    return path, {k: sorted(v) for k, v in expected.items()}, every


def test_every_planted_value_is_found_at_its_row(
    planted: tuple[Path, dict[str, list[int]], list[str]],
) -> None:
    path, expected, _ = planted
    report = scan_frame(read_frame(path))
    assert report.rows_scanned == 400
    found = {kind: k.rows for kind, k in report.kinds.items() if k.count}
    assert found == expected
    for kind, rows in expected.items():
        assert report.kinds[kind].count == len(rows)
        assert report.kinds[kind].rows_total == len(rows)
    total = sum(len(rows) for rows in expected.values())
    assert sum(sum(c.values()) for c in report.columns.values()) == total
    assert set(report.columns) <= {"text", "note"}


def test_the_report_holds_none_of_the_values(
    planted: tuple[Path, dict[str, list[int]], list[str]],
) -> None:
    path, _, every = planted
    report = scan_frame(read_frame(path))
    serialized = json.dumps(report.model_dump()) + report.summary()
    for value in every:
        assert value not in serialized
        assert value.replace(" ", "").replace("-", "") not in serialized.replace(" ", "")


def test_clean_text_gives_zero() -> None:
    frame = pd.DataFrame({"text": FILLER * 40, "n": list(range(200))})
    report = scan_frame(frame)
    assert not report.found
    assert report.summary() == "no personal data in 200 rows"


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "random 1234567890123456",
        "DE89 3704 0044 0532 0130 01",  # mod-97 fails
        "GB82WEST12345698765433",
        "XX89 3704 0044 0532 0130 00",  # no such country
        "ssn 000-12-3456",
        "ssn 666-12-3456",
        "ssn 912-12-3456",
        "ssn 123-00-4567",
        "ssn 123-45-0000",
        "nino GB 12 34 56 C",
        "nino QQ 12 34 56 C",
        "nino AB 12 34 56 E",
    ],
)
def test_invalid_numbers_are_not_reported(text: str) -> None:
    assert find_in_text(text) == {}


def test_known_valid_examples() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert luhn_valid("4111111111111111")
    assert find_in_text("pay GB82 WEST 1234 5698 7654 32 or 4111-1111-1111-1111") == {
        "iban": 1,
        "payment_card": 1,
    }


def test_work_per_cell_is_bounded() -> None:
    huge = "9" * (MAX_CELL_CHARS * 100) + " jane.doe@example.com"
    frame = pd.DataFrame({"text": [huge] * 20})
    started = time.perf_counter()
    report = scan_frame(frame)
    assert time.perf_counter() - started < 5
    assert report.cells_truncated == 20
    assert report.kinds["email"].count == 0  # past the scanned part, and said so


def test_row_lists_are_capped_with_the_total() -> None:
    frame = pd.DataFrame({"text": ["mail a.b@example.org"] * 250})
    report = scan_frame(frame)
    assert report.kinds["email"].rows_total == 250
    assert report.kinds["email"].rows == list(range(1, 101))
