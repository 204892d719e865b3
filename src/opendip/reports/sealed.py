"""Report files with their own manifest (结算公示, 运行分析报告, 院端分析).

`write_sealed` renders a report into a staging directory, writes `<stem>.manifest.json`
(each output file with its SHA-256, the report's kind, period and provenance: the run
directory and its manifest hash) and moves the files into place with the manifest last,
after removing the old one (`opendip.settlement.output.staged_directory`). So a directory
never holds a complete-looking report without a manifest matching its files: a killed
rerun leaves no manifest at all, and a changed file no longer matches.

`verify_sealed` is what every reader of such files calls (the platform serves a run's
report and publication only after it): the manifest, or `ReportIntegrityError` naming the
missing or changed files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from opendip.reports.model import Report
from opendip.reports.render import FORMATS, write_report
from opendip.settlement.output import sha256_file, staged_directory

MANIFEST_SUFFIX = ".manifest.json"


class ReportIntegrityError(ValueError):
    """Report files that do not match their manifest, or have none (Chinese message)."""


def manifest_path(out: Path, stem: str) -> Path:
    return Path(out) / f"{stem}{MANIFEST_SUFFIX}"


def write_sealed(
    report: Report,
    out: Path,
    stem: str,
    formats: Iterable[str] = FORMATS,
    extra: Callable[[Path], dict[str, Path]] | None = None,
) -> dict[str, Path]:
    """Write `<stem>.<format>` for each format (and the files `extra(stage)` writes) into
    `out`, with `<stem>.manifest.json` last; returns the final paths by format, the
    manifest under "manifest". Nothing in `out` changes if rendering fails."""
    out = Path(out)
    name = f"{stem}{MANIFEST_SUFFIX}"
    with staged_directory(out, name) as stage:
        written = write_report(report, stage, stem, formats)
        if extra is not None:
            written.update(extra(stage))
        manifest = {
            "kind": report.kind,
            "period": report.period,
            "title": report.title,
            "provenance": report.provenance,
            "outputs": {p.name: sha256_file(p) for p in sorted(written.values())},
        }
        (stage / name).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    paths = {key: out / p.name for key, p in written.items()}
    paths["manifest"] = out / name
    return paths


def verify_sealed(out: Path, stem: str) -> dict[str, Any]:
    """The manifest of `<stem>` in `out` after checking every file it names."""
    path = manifest_path(out, stem)
    if not path.is_file():
        raise ReportIntegrityError(
            f"{out} 中的“{stem}”没有清单文件 {path.name}：生成未完成或已损坏，不能使用"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportIntegrityError(f"无法读取报告清单 {path}：{exc}") from exc
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, dict) or not outputs:
        raise ReportIntegrityError(f"报告清单 {path} 没有记录输出文件")
    problems = []
    for name, sha in sorted(outputs.items()):
        target = Path(out) / name
        if Path(name).name != name or not target.is_file():
            problems.append(f"{name}（缺失）")
        elif sha256_file(target) != sha:
            problems.append(f"{name}（内容与清单不符）")
    if problems:
        raise ReportIntegrityError(
            f"{out} 中的报告文件与清单 {path.name} 不一致：{'、'.join(problems)}；"
            "文件可能被改动，已拒绝使用（请重新生成）"
        )
    return manifest


__all__ = [
    "MANIFEST_SUFFIX",
    "ReportIntegrityError",
    "manifest_path",
    "verify_sealed",
    "write_sealed",
]
