"""The agency's monthly and annual DIP report (自动化报告), built from a settlement run.

`build_report(run_dir)` reads the run (`opendip settle month|year --out DIR`, a platform
run's `runs/<id>/settlement`, or the demo's `settlement/`) and the inputs its manifest
names, and returns a `Report` whose every figure has a stable key (docs/reports.md).
"""

from __future__ import annotations

from pathlib import Path

import opendip
from opendip.reports.model import Report, Section
from opendip.reports.region.assessment import assessment
from opendip.reports.region.cases import basic_groups, deviation
from opendip.reports.region.costs import costs
from opendip.reports.region.facts import Extras, RegionFacts, load
from opendip.reports.region.forecast import forecast
from opendip.reports.region.fund import fund, hospital_rows, hospitals
from opendip.reports.region.overview import overview
from opendip.reports.region.settlement import settlement
from opendip.reports.region.structure import score_bands, structure
from opendip.reports.region.summary import summary
from opendip.reports.region.supervision import supervision
from opendip.reports.region.yoy import year_on_year

KIND_TITLES = {"annual": "年度", "monthly": "月度"}


def provenance(f: RegionFacts) -> dict[str, str]:
    final = f.policy.periods()[-1][2]
    out = {
        "run_dir": str(f.src.run_dir),
        "run_kind": {"annual": "年终清算", "monthly": "月度预结算"}.get(f.kind, f.kind),
        "manifest_sha256": f.src.manifest_sha256,
        "policy_file": f.src.policy_path.name,
        "policy_version": str(final.version),
        "code_version": opendip.__version__,
    }
    commit = (f.src.manifest.get("code") or {}).get("git_commit")
    if commit:
        out["settlement_code_commit"] = str(commit)
    for key, digest in sorted(f.side_inputs.items()):
        out[f"{key}_sha256"] = digest
    return out


def period_label(kind: str, period: str) -> str:
    if kind == "annual":
        return f"{period}年"
    return f"{period[:4]}年{int(period[5:])}月"


def build_report(
    run_dir: Path,
    extras: Extras | None = None,
    search_dirs: tuple[Path, ...] = (),
) -> Report:
    """The monthly or annual report of a settlement run (kind from the run's manifest)."""
    f = load(Path(run_dir), extras, search_dirs)
    region = f.policy.periods()[-1][2].region.name
    title = f"{region} DIP 支付方式{KIND_TITLES[f.kind]}运行分析报告（{period_label(f.kind, f.period)}）"
    by_hospital = hospital_rows(f)
    sections: list[Section | None] = [
        overview(f),
        fund(f, by_hospital),
        hospitals(f, by_hospital),
        settlement(f),
        assessment(f),
        forecast(f),
        costs(f),
        structure(f),
        score_bands(f),
        basic_groups(f),
        year_on_year(f),
        deviation(f),
        supervision(f),
    ]
    report = Report(
        f.kind, f.period, title, region, [s for s in sections if s is not None], provenance(f)
    )
    report.sections.insert(0, summary(report, period_label(f.kind, f.period)))
    return report
