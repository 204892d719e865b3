"""The reports of a settlement run (自动化报告, 结算公示表), kept under runs/<id>/reports.

Built at the end of the run (so the report page opens at once) or on first request, and
rebuilt on demand; one lock per run so two requests never build the same files at once.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from sqlalchemy import select

from opendip.reports.region import Extras, build_publication, build_report
from opendip.store import Store
from opendip.store.models import Application
from opendip.web.region import RegionData
from opendip.web.settings import Settings
from opendip.workflow.machine import STATE_LABELS

REPORT, PUBLICATION = "report", "publication"
FORMATS = ("json", "xlsx", "pdf")


class RunReports:
    def __init__(self, store: Store, settings: Settings, region: RegionData) -> None:
        self.store = store
        self.settings = settings
        self.region = region
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, run_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(run_id, threading.Lock())

    def _extras(self) -> Extras:
        """Every application (the agency's view: reports are for agency roles). QC and
        supervision results are found in the region directory (`search_dirs`)."""
        with self.store.session() as s:
            apps = [
                {"kind": kind, "state": STATE_LABELS.get(state, state)}
                for kind, state in s.execute(select(Application.kind, Application.state))
            ]
        return Extras(applications=apps)

    def search_dirs(self) -> tuple[Path, ...]:
        dirs = [self.region.data_dir]
        if self.settings.policy_path:
            dirs.append(Path(self.settings.policy_path).parent)
        return tuple(dirs)

    def files(self, run_id: int, settlement: Path, which: str) -> dict[str, Path]:
        """The run's report (or publication) files, built when missing: by format, and for
        the report its HTML fragment for the page ("fragment")."""
        from opendip.reports.render import render_html
        from opendip.reports.sealed import ReportIntegrityError, verify_sealed, write_sealed

        out = settlement.parent / "reports"
        stem = f"{which}_{run_id}"
        paths = {fmt: out / f"{stem}.{fmt}" for fmt in FORMATS}
        if which == REPORT:
            paths["fragment"] = out / f"{stem}.fragment.html"
        with self._lock(run_id):
            try:  # built before and unchanged since (files match their manifest)
                names = set(verify_sealed(out, stem)["outputs"])
                if {p.name for p in paths.values()} <= names:
                    return paths
            except ReportIntegrityError:
                pass  # missing, half-written or changed: build again from the verified run
            if which == REPORT:
                report = build_report(settlement, self._extras(), self.search_dirs())
            else:
                report = build_publication(settlement, self.search_dirs())

            def fragment(stage: Path) -> dict[str, Path]:
                if which != REPORT:
                    return {}
                path = stage / paths["fragment"].name
                path.write_text(render_html(report, standalone=False), "utf-8")
                return {"fragment": path}

            write_sealed(report, out, stem, formats=FORMATS, extra=fragment)
            return paths

    def clear(self, run_id: int, settlement: Path) -> None:
        with self._lock(run_id):
            shutil.rmtree(settlement.parent / "reports", ignore_errors=True)
