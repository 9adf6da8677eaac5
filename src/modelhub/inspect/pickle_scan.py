"""Scan pickle-based files with picklescan: list the globals they import, never unpickle.

Loading a pickle can run any code its author chose, so every pickle-based file
requires trust; the findings tell the admin what the file would import.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection
from modelhub.inspect.sniff import invalid

_SKLEARN_MODULES = ("sklearn", "joblib", "xgboost", "lightgbm")
_TORCH_MODULES = ("torch",)


@dataclass
class ScanReport:
    findings: list[str] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)
    dangerous: int = 0
    suspicious: int = 0
    scan_error: bool = False

    def as_details(self) -> dict[str, Any]:
        return {
            "dangerous": self.dangerous,
            "suspicious": self.suspicious,
            "scan_error": self.scan_error,
        }


# What picklescan lets escape on hostile bytes, beyond what it reports as scan errors.
_SCANNER_ERRORS = (
    ValueError,  # numpy headers, STACK_GLOBAL operands, UnicodeDecodeError in names
    zipfile.BadZipFile,
    NotImplementedError,  # zip entries of an unsupported version or compression
    EOFError,
    struct.error,
    OSError,
    MemoryError,
    RecursionError,
)


class _ClampedReader(io.BufferedReader):
    """A file whose read(n) never asks for more than the bytes left in it.

    A pickle's length fields can claim 2^54 bytes in an 11-byte file; a plain file
    object allocates the buffer before finding out there is nothing to fill it.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.total = path.stat().st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > 0:
            size = min(size, max(self.total - self.tell(), 0))
            if size == 0:
                return b""
        return super().read(size)


def scan(path: Path, what: str = "pickle") -> ScanReport:
    """List the globals `path` imports, each as "<safety>: module.name"; dangerous first.

    Raises InvalidInput when the scanner cannot read the file at all.
    """
    from picklescan.scanner import SafetyLevel, scan_bytes

    try:
        with _ClampedReader(path) as data:
            result = scan_bytes(data, path.name, path.suffix)
    except _SCANNER_ERRORS as exc:
        problem = f"the pickle scanner cannot read it ({type(exc).__name__}: {_first_line(exc)})"
        raise invalid(path, what, problem) from exc
    order = {SafetyLevel.Dangerous: 0, SafetyLevel.Suspicious: 1, SafetyLevel.Innocuous: 2}
    report = ScanReport(scan_error=bool(result.scan_err))
    seen: set[tuple[str, str, str]] = set()
    for g in sorted(result.globals, key=lambda g: (order[g.safety], g.module, g.name)):
        key = (g.safety.value, g.module, g.name)
        if key in seen:
            continue
        seen.add(key)
        report.findings.append(f"{g.safety.value}: {g.module}.{g.name}")
        report.modules.add(g.module)
        if g.safety is SafetyLevel.Dangerous:
            report.dangerous += 1
        elif g.safety is SafetyLevel.Suspicious:
            report.suspicious += 1
    if report.scan_error:
        report.findings.append("scan error: the pickle stream could not be fully parsed")
    return report


def framework_from(report: ScanReport, path: Path) -> Framework:
    if path.suffix == ".joblib" or _imports(report, _SKLEARN_MODULES):
        return Framework.SKLEARN
    if _imports(report, _TORCH_MODULES):
        return Framework.PYTORCH
    return Framework.CUSTOM


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _imports(report: ScanReport, roots: tuple[str, ...]) -> bool:
    return any(m.split(".")[0] in roots for m in report.modules)


def inspect_pickle(path: Path) -> Inspection:
    """Describe a pickle (or legacy torch) file from a static scan; always requires trust."""
    report = scan(path)
    reason = (
        f"{report.dangerous} dangerous import(s) found"
        if report.dangerous
        else "pickle files can execute code when loaded"
    )
    return Inspection(
        framework=framework_from(report, path),
        requires_trust=True,
        pickle_findings=report.findings,
        details={"format": "pickle", "trust_reason": reason, "pickle_scan": report.as_details()},
    )
