"""Find personal data in a table's cells, and report where it is, never what it is.

Each detector is a regular expression that finds candidates, then a check that keeps
only real ones: payment card numbers must pass the Luhn check, IBANs their country's
length and the mod-97 check, US social security numbers must lie outside the ranges
never issued. Detectors run in a fixed order and each one blanks what it found, so a
card number is not also counted as a phone number.

The report holds counts, row numbers (1-based data rows, the header is not a row;
the first `MAX_ROWS_LISTED` per kind, with the total) and counts per column. The
values found never leave this module: not in the report, a message or an exception.
Work per cell is bounded: a cell longer than `MAX_CELL_CHARS` is scanned up to that
length and counted as truncated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pandas as pd

MAX_CELL_CHARS = 10_000
MAX_ROWS_LISTED = 100
MAX_COLUMNS_REPORTED = 200


class KindFindings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = 0
    rows: list[int] = Field(default_factory=list, description="First rows holding it, 1-based.")
    rows_total: int = 0


class PiiReport(BaseModel):
    """Where personal data was found: per kind and per column, counts and rows only."""

    model_config = ConfigDict(extra="forbid")

    rows_scanned: int
    cells_scanned: int
    cells_truncated: int = 0
    kinds: dict[str, KindFindings] = Field(default_factory=dict)
    columns: dict[str, dict[str, int]] = Field(default_factory=dict)

    @property
    def found(self) -> bool:
        return any(k.count for k in self.kinds.values())

    def summary(self) -> str:
        if not self.found:
            return f"no personal data in {self.rows_scanned:,} rows"
        parts = [
            f"{k.count} {kind} in {k.rows_total} row{'s' if k.rows_total != 1 else ''}"
            for kind, k in self.kinds.items()
            if k.count
        ]
        return "personal data found: " + ", ".join(parts)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# IBAN length by country (the SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(compact: str) -> bool:
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Outside the ranges never issued: area 000, 666 and 900-999; group 00; serial 0000."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str]], bool]
    # A cheap search that must hit before the full pattern is worth running.
    hint: re.Pattern[str] | None = None


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _card(match: re.Match[str]) -> bool:
    digits = _digits(match.group(0))
    # Issued card numbers start 2-6 (Mastercard, Amex/Diners/JCB, Visa, Mastercard, Discover).
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _iban(match: re.Match[str]) -> bool:
    return iban_valid(match.group(0).replace(" ", ""))


def _ssn(match: re.Match[str]) -> bool:
    return ssn_valid(match.group(1), match.group(2), match.group(3))


def _nino(match: re.Match[str]) -> bool:
    return match.group(1) not in _NINO_BAD_PREFIXES


def _phone(match: re.Match[str]) -> bool:
    return 8 <= len(_digits(match.group(0))) <= 15


def _always(match: re.Match[str]) -> bool:
    return True


DETECTORS = (
    Detector(
        "email",
        re.compile(
            r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b"
        ),
        _always,
        re.compile("@"),
    ),
    Detector(
        "iban",
        re.compile(
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
            r"(?![A-Za-z0-9])"
        ),
        _iban,
        re.compile(r"[A-Z]{2}\d{2}"),
    ),
    Detector("payment_card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
    Detector("us_ssn", re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])"), _ssn),
    Detector(
        "uk_nino",
        re.compile(
            r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
            r"(?![A-Za-z0-9])"
        ),
        _nino,
        re.compile(r"[A-Z]{2} ?\d{2}"),
    ),
    Detector(
        "phone",
        re.compile(
            # International: +CC then groups; or national: (555) 123-4567, 555-123-4567,
            # 020 7946 0958, 07700 900123.
            r"(?<![\w+])(?<!\d[ .-])(?:\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){2,6}"
            r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"
            r"|\d{3}[.-]\d{3}[.-]\d{4}"
            r"|0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4})(?!\w)(?![ .-]\d)"
        ),
        _phone,
    ),
)

KINDS = tuple(detector.kind for detector in DETECTORS)
# Every kind needs an '@' or at least six digits close together: a cell without either
# is passed over after one search.
_CANDIDATE = re.compile(r"@|\d(?:\D{0,3}\d){5}")


def find_in_text(text: str) -> dict[str, int]:
    """How many of each kind `text` holds (the first MAX_CELL_CHARS characters)."""
    remaining = text[:MAX_CELL_CHARS]
    counts: dict[str, int] = {}
    if not _CANDIDATE.search(remaining):
        return counts
    for detector in DETECTORS:
        if detector.hint is not None and not detector.hint.search(remaining):
            continue
        found = 0
        pieces: list[str] = []
        last = 0
        for match in detector.pattern.finditer(remaining):
            if detector.accept(match):
                found += 1
                pieces.append(remaining[last : match.start()])
                pieces.append(" " * (match.end() - match.start()))
                last = match.end()
        if found:
            counts[detector.kind] = found
            pieces.append(remaining[last:])
            remaining = "".join(pieces)
    return counts


def _text_columns(frame: pd.DataFrame) -> list[str]:
    import pandas as pd

    chosen = []
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            continue
        chosen.append(column)
    return chosen


def scan_frame(frame: pd.DataFrame) -> PiiReport:
    """Scan every text (and integer: a card number may be read as one) cell of `frame`."""
    columns = _text_columns(frame)
    kinds = {kind: KindFindings() for kind in KINDS}
    per_column: dict[str, dict[str, int]] = {}
    rows_with: dict[str, set[int]] = {kind: set() for kind in KINDS}
    cells = truncated = 0
    for column in columns:
        counts_here: dict[str, int] = {}
        for row, value in _cells(frame[column]):
            cells += 1
            if len(value) > MAX_CELL_CHARS:
                truncated += 1
            for kind, count in find_in_text(value).items():
                kinds[kind].count += count
                rows_with[kind].add(row)
                counts_here[kind] = counts_here.get(kind, 0) + count
        if counts_here and len(per_column) < MAX_COLUMNS_REPORTED:
            per_column[str(column)[:200]] = counts_here
    for kind, rows in rows_with.items():
        ordered = sorted(rows)
        kinds[kind].rows = ordered[:MAX_ROWS_LISTED]
        kinds[kind].rows_total = len(ordered)
    return PiiReport(
        rows_scanned=len(frame),
        cells_scanned=cells,
        cells_truncated=truncated,
        kinds=kinds,
        columns=per_column,
    )


def _cells(series: Any) -> Iterable[tuple[int, str]]:
    for position, value in enumerate(series.tolist(), start=1):
        if value is None or isinstance(value, float):  # missing cells read as None / NaN
            continue
        text = value if isinstance(value, str) else str(value)
        if len(text) >= 5:  # nothing shorter is any kind above
            yield position, text


def scrub_text(text: str) -> tuple[str, dict[str, int]]:
    """`text` with each piece of personal data `find_in_text` would count replaced by
    `[KIND]` (`[EMAIL]`, `[PHONE]` ...), and how many of each kind were replaced.

    For the personas' interactions (issue 17): scrubbed before anything is stored.
    Text past MAX_CELL_CHARS is dropped, never stored unscanned.
    """
    remaining = text[:MAX_CELL_CHARS]
    counts: dict[str, int] = {}
    if not _CANDIDATE.search(remaining):
        return remaining, counts
    for detector in DETECTORS:
        if detector.hint is not None and not detector.hint.search(remaining):
            continue
        pieces: list[str] = []
        last = found = 0
        for match in detector.pattern.finditer(remaining):
            if detector.accept(match):
                found += 1
                pieces.append(remaining[last : match.start()])
                pieces.append(f"[{detector.kind.upper()}]")
                last = match.end()
        if found:
            counts[detector.kind] = found
            pieces.append(remaining[last:])
            remaining = "".join(pieces)
    return remaining, counts
