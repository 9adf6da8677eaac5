"""Scan pickle-based files with picklescan: list the globals they import, never unpickle.

Loading a pickle can run any code its author chose, so every pickle-based file
requires trust; the findings tell the admin what the file would import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection

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


def scan(path: Path) -> ScanReport:
    """List the globals `path` imports, each as "<safety>: module.name"; dangerous first."""
    from picklescan.scanner import SafetyLevel, scan_file_path

    result = scan_file_path(str(path))
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
