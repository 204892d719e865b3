"""Read-only access to a region directory's Parquet tables for the pages.

Everything goes through Ibis on DuckDB: filters, LIMIT/OFFSET and column selection are
pushed down into the Parquet scan, so a page never loads all cases into Python. One
DuckDB connection per region, guarded by a lock (DuckDB connections are not shared
across threads safely).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from opendip.contract import CASES
from opendip.contract.tables import EXPLAIN_FACTS
from opendip.engine import connect
from opendip.scoring.explain import render as render_explanation
from opendip.store.access import CaseScope

CASE_YEAR = re.compile(r"^cases_(\d{4})\.parquet$")
#: Columns the case list shows (from the cases table).
LIST_COLUMNS = (
    "case_id",
    "hospital_id",
    "settle_month",
    "department",
    "insurance_type",
    "main_diagnosis",
    "main_procedure",
    "los_days",
    "total_cost",
)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass
class CaseFilters:
    hospital_id: str | None = None
    month: str | None = None
    group_code: str | None = None
    deviation: str | None = None
    department: str | None = None
    case_id: str | None = None
    #: Who is asking (opendip.store.access.case_scope); None shows nothing.
    scope: CaseScope | None = None


@dataclass
class CasePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    has_results: bool = False
    has_scores: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass
class ResultFiles:
    """Where the current grouping/scoring results are (a run's, or the demo's)."""

    grouped: Path | None = None
    scored: Path | None = None
    source: str = ""
    extra: dict[str, Path] = field(default_factory=dict)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _mtime_or_none(path: Path) -> float | None:
    """The file's modification time, None when it does not exist (one `stat`)."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class RegionData:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        # The region's fixed file names, built once: the per-case API checks them on every
        # request (a new directory or policy is seen on the next one), issue 16 §4.
        self._metrics_file = self.data_dir / "directory.metrics.json"
        self._hospitals_file = self.data_dir / "hospitals.parquet"
        self._directories_dir = self.data_dir / "directories"
        self._directory_file = self.data_dir / "directory.parquet"
        self._policy_file = self.data_dir / "policy.yaml"
        self._lock = threading.RLock()
        self._con = connect()
        self._views: dict[tuple[Any, ...], ir.Table] = {}
        self._small: dict[tuple[str, float], Any] = {}
        self._by_id: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
        self.results = ResultFiles()
        self.refresh_results()

    # -- files ------------------------------------------------------------------------------
    def case_years(self) -> list[int]:
        years = []
        for p in self.data_dir.glob("cases_*.parquet"):
            m = CASE_YEAR.match(p.name)
            if m:
                years.append(int(m.group(1)))
        return sorted(years)

    def current_year(self) -> int | None:
        years = self.case_years()
        return years[-1] if years else None

    def base_case_file(self) -> Path | None:
        year = self.current_year()
        return self.data_dir / f"cases_{year}.parquet" if year else None

    def refresh_results(self) -> None:
        """Point the pages at the region directory's own grouping and scoring results."""
        self.use_results(
            self.data_dir / "grouped.parquet",
            self.data_dir / "scored.parquet",
            "区域数据目录的入组与分值结果",
        )

    def use_results(self, grouped: Path, scored: Path, source: str) -> None:
        """Point the home page and case pages at a (published) run's results."""
        with self._lock:
            self.results = ResultFiles(
                grouped if grouped.exists() else None,
                scored if scored.exists() else None,
                source,
            )

    def all_case_mean_fen(self) -> int | None:
        """The directory build's all-case mean (directory.metrics.json), None without it."""
        path = self._metrics_file
        mtime = _mtime_or_none(path)
        if mtime is None:
            return None
        key = (str(path), mtime)
        if key not in self._small:
            self._small[key] = json.loads(path.read_text(encoding="utf-8"))
        return self._small[key].get("all_case_mean_fen")

    def group_mean_los(self) -> dict[str, Decimal]:
        """Group code → mean length of stay (days, 1 decimal, half up) of the region's base
        cases in the current grouping results (事中监控: days against the group's mean stay);
        computed relationally, cached per file version."""
        base = self.base_case_file()
        grouped = self.results.grouped
        if base is None or grouped is None or not Path(grouped).exists():
            return {}
        key = ("mean_los", str(base), _mtime(base), str(grouped), _mtime(Path(grouped)))
        if key not in self._small:
            with self._lock:
                cases = self._view([base]).select("case_id", "los_days")
                g = self._view([grouped]).select("case_id", "group_code")
                j = cases.join(g, "case_id")
                j = j.filter(j.group_code.notnull() & j.los_days.notnull())
                t = (
                    j.group_by("group_code")
                    .aggregate(total=j.los_days.sum(), n=j.count())
                    .to_pyarrow()
                )
            self._small[key] = {
                r["group_code"]: (Decimal(int(r["total"])) / Decimal(int(r["n"]))).quantize(
                    Decimal("0.1"), ROUND_HALF_UP
                )
                for r in t.to_pylist()
                if r["n"]
            }
        return self._small[key]

    def _view(self, paths: Sequence[Path | str]) -> ir.Table:
        key = tuple((str(p), _mtime(Path(p))) for p in paths)
        view = self._views.get(key)
        if view is None:
            view = self._con.read_parquet([str(p) for p in paths], union_by_name=True)
            self._views[key] = view
        return view

    def _small_table(self, path: Path) -> pa.Table | None:
        mtime = _mtime_or_none(path)
        if mtime is None:
            return None
        key = (str(path), mtime)
        if key not in self._small:
            self._small[key] = pq.read_table(path)
        return self._small[key]

    # -- hospitals ----------------------------------------------------------------------------
    def hospitals(self) -> list[dict[str, Any]]:
        t = self._small_table(self._hospitals_file)
        return t.sort_by("hospital_id").to_pylist() if t is not None else []

    def hospital_names(self) -> dict[str, str]:
        return {h["hospital_id"]: h["name"] for h in self.hospitals()}

    def counties(self) -> list[str]:
        """The counties (区县) of the hospital registry, sorted."""
        return sorted({str(h["county"]) for h in self.hospitals() if h.get("county")})

    def county_hospitals(self, county: str) -> frozenset[str]:
        """The hospitals of one county (empty for an unknown county: fails closed)."""
        return frozenset(h["hospital_id"] for h in self.hospitals() if h.get("county") == county)

    def hospital(self, hospital_id: str) -> dict[str, Any] | None:
        key = ("by_id", _mtime(self._hospitals_file))
        by_id = self._by_id.get(key)
        if by_id is None:
            by_id = {h["hospital_id"]: h for h in self.hospitals()}
            self._by_id = {key: by_id}
        found = by_id.get(hospital_id)
        return dict(found) if found is not None else None

    # -- cases ----------------------------------------------------------------------------------
    def _uploads_view(self, paths: Sequence[str]) -> ir.Table:
        """All upload files in one scan, with `_seq` = the file's position in `paths`."""
        key = ("uploads", *((p, _mtime(Path(p))) for p in paths))
        view = self._views.get(key)
        if view is None:
            scan = self._con.read_parquet(list(paths), union_by_name=True, filename=True)
            order = ibis.memtable(
                {"filename": list(paths), "_seq": list(range(len(paths)))},
                schema={"filename": "string", "_seq": "int64"},
            )
            view = scan.join(order, "filename").select(*CASES.names, "_seq")
            self._views[key] = view
        return view

    def cases_expr(self, upload_files: Sequence[str] = ()) -> ir.Table | None:
        """THE cases a platform run (and every page) uses: the one entry point.

        `upload_files` are the accepted-case Parquet files of the imported uploads, **oldest
        first** (`repositories.accepted_upload_files`); their order is the version order.

        Identity of a case is ``(hospital_id, case_id)`` (ids normalised at import by
        `opendip.contract.ids`). Resolution, all relational:

        1. *Owner*: a case id belongs to the hospital that first submitted it: the region's
           base file (`cases_<year>.parquet`) first, then the earliest upload holding it.
        2. Upload rows whose case id is owned by another hospital are ignored here (the
           import already quarantined them with a reason; this is the guard against a race
           between two uploads).
        3. *Versions*: of the remaining upload rows, only the latest version of each
           ``(hospital_id, case_id)`` counts (a re-upload is a correction; earlier versions
           stay in their upload's files as history).
        4. The base row of a key that has an upload version is replaced by it.

        So every case key gives exactly one row (never both versions, never neither), and
        no upload can move, duplicate or hide another hospital's case.
        """
        base_file = self.base_case_file()
        uploads = [str(f) for f in upload_files if Path(f).exists()]
        if base_file is None and not uploads:
            return None
        names = list(CASES.names)
        base = self._view([base_file]).select(*names) if base_file is not None else None
        if not uploads:
            return base
        up = self._uploads_view(uploads)
        claims = up.select("case_id", "hospital_id", "_seq")
        if base is not None:
            claims = base.select("case_id", "hospital_id", _seq=ibis.literal(-1, "int64")).union(
                claims
            )
        first = claims.group_by("case_id").aggregate(_first=claims._seq.min())
        owners = (
            claims.join(first, [claims.case_id == first.case_id, claims._seq == first._first])
            .select(case_id=claims.case_id, owner=claims.hospital_id)
            .distinct()
        )
        owned = up.semi_join(owners, [up.case_id == owners.case_id, up.hospital_id == owners.owner])
        last = owned.group_by(["hospital_id", "case_id"]).aggregate(_last=owned._seq.max())
        latest = owned.semi_join(
            last,
            [
                owned.hospital_id == last.hospital_id,
                owned.case_id == last.case_id,
                owned._seq == last._last,
            ],
        ).select(*names)
        if base is None:
            return latest
        return base.anti_join(latest, ["hospital_id", "case_id"]).union(latest)

    def case_owners(self, cases: pa.Table, upload_files: Sequence[str] = ()) -> pa.Table:
        """For the (hospital_id, case_id) rows of `cases` (e.g. a new upload's accepted rows),
        the hospital that already owns each case id (`cases_expr`), or null when new.

        Columns: row (position in `cases`), case_id, hospital_id, owner.
        """
        keys = pa.table(
            {
                "row": pa.array(range(cases.num_rows), pa.int64()),
                "case_id": cases["case_id"],
                "hospital_id": cases["hospital_id"],
            }
        )
        with self._lock:
            current = self.cases_expr(upload_files)
            if current is None:
                return keys.append_column("owner", pa.nulls(keys.num_rows, pa.string()))
            mine = ibis.memtable(keys)
            have = current.select("case_id", owner=current.hospital_id).distinct()
            have = have.semi_join(mine, "case_id")
            joined = mine.left_join(have, "case_id").select(
                "row", case_id=mine.case_id, hospital_id=mine.hospital_id, owner=have.owner
            )
            # A case id held by several hospitals in the base file: the uploader's own wins.
            per_row = joined.group_by(["row", "case_id", "hospital_id"]).aggregate(
                own=(joined.owner == joined.hospital_id).any(), other=joined.owner.min()
            )
            out = (
                per_row.select(
                    "row",
                    "case_id",
                    "hospital_id",
                    owner=ibis.ifelse(
                        per_row.own.fill_null(False), per_row.hospital_id, per_row.other
                    ),
                )
                .order_by("row")
                .to_pyarrow()
            )
        return out

    def list_cases(
        self,
        filters: CaseFilters,
        page: int = 1,
        page_size: int = 50,
        upload_files: Sequence[str] = (),
        only_case_ids: Sequence[str] | None = None,
    ) -> CasePage:
        page = max(1, page)
        with self._lock:
            cases = self.cases_expr(upload_files)
            if cases is None:
                return CasePage([], 0, page, page_size)
            if filters.scope is None:
                return CasePage([], 0, page, page_size)
            t = filters.scope.filter(cases).select(*LIST_COLUMNS)
            if filters.hospital_id:
                t = t.filter(t.hospital_id == filters.hospital_id)
            if filters.month:
                t = t.filter(t.settle_month == filters.month)
            if filters.department:
                t = t.filter(t.department == filters.department)
            if filters.case_id:
                t = t.filter(t.case_id.startswith(filters.case_id))
            if only_case_ids is not None:
                t = t.filter(t.case_id.isin(list(only_case_ids)))
            grouped = self._view([self.results.grouped]) if self.results.grouped else None
            scored = self._view([self.results.scored]) if self.results.scored else None
            if filters.group_code and grouped is not None:
                g = grouped.filter(grouped.group_code == filters.group_code).select("case_id")
                t = t.semi_join(g, "case_id")
            if filters.deviation and scored is not None:
                d = scored.filter(scored.deviation == filters.deviation).select("case_id")
                t = t.semi_join(d, "case_id")
            total = int(t.count().execute())
            # Stored order (DuckDB preserves the Parquet row order): LIMIT/OFFSET then stops
            # the scan early instead of sorting the whole region for every page.
            rows_t = t.limit(page_size, offset=(page - 1) * page_size)
            rows = rows_t.to_pyarrow().to_pylist()
            ids = [r["case_id"] for r in rows]
            extra = self._results_for(ids)
        for r in rows:
            r.update(extra.get(r["case_id"], {}))
        return CasePage(rows, total, page, page_size, grouped is not None, scored is not None)

    def _results_for(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {i: {} for i in ids}
        if not ids:
            return out
        if self.results.grouped:
            g = self._view([self.results.grouped])
            g = g.filter(g.case_id.isin(ids)).select(
                "case_id", "group_code", "group_type", "base_score", "match_step", "reason"
            )
            for r in g.to_pyarrow().to_pylist():
                out[r["case_id"]].update(r)
        if self.results.scored:
            sc = self._view([self.results.scored])
            wanted = dict.fromkeys([*_SCORED_SHOWN, *EXPLAIN_FACTS])
            cols = [c for c in wanted if c in sc.columns]
            sc = sc.filter(sc.case_id.isin(ids)).select(*cols)
            for r in sc.to_pyarrow().to_pylist():
                if "explanation" not in r and "explain_body" in r:
                    # runs keep the explanation's facts; the sentence is rendered on read
                    r["explanation"] = render_explanation(r)
                out[r["case_id"]].update({k: r[k] for k in _SCORED_SHOWN if k in r})
        return out

    def case(
        self, case_id: str, scope: CaseScope, upload_files: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """One case with its results, or None (also when outside `scope`)."""
        with self._lock:
            cases = self.cases_expr(upload_files)
            if cases is None:
                return None
            t = scope.filter(cases.filter(cases.case_id == case_id))
            rows = t.limit(1).to_pyarrow().to_pylist()
            if not rows:
                return None
            row = rows[0]
            row["_results"] = self._results_for([case_id]).get(case_id, {})
        return row

    def case_hospitals(
        self, case_ids: Sequence[str], upload_files: Sequence[str] = ()
    ) -> dict[str, str]:
        """case_id → hospital_id for the ids that exist."""
        if not case_ids:
            return {}
        with self._lock:
            cases = self.cases_expr(upload_files)
            if cases is None:
                return {}
            t = cases.filter(cases.case_id.isin(list(case_ids))).select("case_id", "hospital_id")
            return {r["case_id"]: r["hospital_id"] for r in t.to_pyarrow().to_pylist()}

    def discharges(
        self, hospital_id: str, case_ids: Sequence[str], upload_files: Sequence[str] = ()
    ) -> tuple[dict[str, int], dict[int, int]]:
        """For the 特例单议 cap: the discharge year of each of `case_ids` that is the
        hospital's, and the hospital's discharged cases per year."""
        with self._lock:
            cases = self.cases_expr(upload_files)
            if cases is None:
                return {}, {}
            own = cases.filter(cases.hospital_id == hospital_id)
            own = own.mutate(_year=own.discharge_date.year())
            per_year = own.group_by("_year").aggregate(n=own.count()).to_pyarrow().to_pylist()
            years = {}
            if case_ids:
                picked = own.filter(own.case_id.isin(list(case_ids))).select("case_id", "_year")
                years = {r["case_id"]: r["_year"] for r in picked.to_pyarrow().to_pylist()}
            return years, {r["_year"]: r["n"] for r in per_year}

    def months(self) -> list[str]:
        year = self.current_year()
        return [f"{year}-{m:02d}" for m in range(1, 13)] if year else []

    def departments(self) -> list[str]:
        with self._lock:
            cases = self.cases_expr()
            if cases is None:
                return []
            t = cases.select("department").distinct().order_by("department").limit(500)
            return [d for d in t.to_pyarrow().column(0).to_pylist() if d]

    # -- dashboard ----------------------------------------------------------------------------
    def dashboard(self, scope: CaseScope, upload_files: Sequence[str] = ()) -> dict[str, Any]:
        """Counts and money of the cases in `scope` (the whole region: CaseScope())."""
        with self._lock:
            cases = self.cases_expr(upload_files)
            if cases is None:
                return {"cases": 0, "months": [], "year": None}
            t = scope.filter(cases)
            by_month = (
                t.group_by("settle_month")
                .aggregate(n=t.count(), cost=t.total_cost.sum())
                .order_by("settle_month")
                .to_pyarrow()
                .to_pylist()
            )
            out: dict[str, Any] = {
                "results_source": self.results.source,
                "year": self.current_year(),
                "cases": sum(r["n"] for r in by_month),
                "total_cost_fen": sum(int(r["cost"] or 0) for r in by_month),
                "months": by_month,
            }
            if self.results.grouped:
                g = self._view([self.results.grouped])
                g = g.semi_join(t.select("case_id"), "case_id")
                types = g.group_by("group_type").aggregate(n=g.count()).to_pyarrow().to_pylist()
                counts = {r["group_type"]: int(r["n"]) for r in types}
                grouped_n = sum(v for k, v in counts.items() if k != "unmatched")
                total = sum(counts.values())
                out["group_types"] = counts
                out["grouping_rate"] = grouped_n / total if total else None
            if self.results.scored:
                sc = self._view([self.results.scored])
                if not scope.whole_region:
                    keys = [k for k in ("hospital_id", "case_id") if k in sc.columns]
                    sc = sc.semi_join(t.select(*keys), keys)
                cols = sc.columns
                aggs: dict[str, Any] = {"n": sc.count()}
                for c in ("dip_amount_fen", "fund_payable_fen", "ffs_fund_fen", "settled_score"):
                    if c in cols:
                        aggs[c] = sc[c].sum()
                agg = sc.aggregate(**aggs).to_pyarrow().to_pylist()[0]
                out["scored"] = agg
                out.update(self._inpatient_fund(scope, t, agg.get("fund_payable_fen")))
                dev = sc.group_by("deviation").aggregate(n=sc.count()).to_pyarrow().to_pylist()
                out["deviations"] = {r["deviation"]: int(r["n"]) for r in dev}
                if "point_value" in cols:
                    pv = (
                        sc.group_by("pool")
                        .aggregate(pv=sc.point_value.max())
                        .to_pyarrow()
                        .to_pylist()
                    )
                    out["point_values"] = {r["pool"]: r["pv"] for r in pv}
                several = scope.hospital_id is None and not (scope.department or scope.doctor_id)
                if several and "fund_payable_fen" in cols and "ffs_fund_fen" in cols:
                    # Like with like: the fund's payment under DIP vs the fund's payment by
                    # item (not the DIP total, which includes the patients' share).
                    per = (
                        sc.group_by("hospital_id")
                        .aggregate(
                            dip=sc.dip_amount_fen.sum(),
                            fund=sc.fund_payable_fen.sum(),
                            ffs=sc.ffs_fund_fen.sum(),
                        )
                        .order_by("hospital_id")
                        .to_pyarrow()
                        .to_pylist()
                    )
                    out["by_hospital"] = per
            yoy = self.year_on_year(scope, upload_files)
            if yoy is not None:
                out["yoy"] = yoy
        return out

    def year_on_year(
        self, scope: CaseScope, upload_files: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """Per-group cost per case this year against last year (how many groups got
        cheaper) and 基层病种 cases by hospital level, for the cases in `scope`; None unless
        last year's lists and grouping (`cases_<y-1>.parquet`, `grouped_<y-1>.parquet`) are
        in the region directory beside this year's grouping. The report's own functions
        (`opendip.reports.region.yoy`), so the dashboard and the report agree."""
        from opendip.reports.region.yoy import CHANGE_LABELS, basic_by_level, group_cost_changes

        year = self.current_year()
        if year is None or self.results.grouped is None:
            return None
        prev_cases = self.data_dir / f"cases_{year - 1}.parquet"
        prev_grouped = self.data_dir / f"grouped_{year - 1}.parquet"
        hospitals = self.data_dir / "hospitals.parquet"
        if not (prev_cases.exists() and prev_grouped.exists() and hospitals.exists()):
            return None
        with self._lock:

            def costs(cases: ir.Table) -> ir.Table:
                t = scope.filter(cases)
                return t.select(
                    case_id=t.case_id.cast("string"),
                    hospital_id=t.hospital_id.cast("string"),
                    total_cost_fen=t.total_cost.cast("int64"),
                )

            current = self.cases_expr(upload_files)
            if current is None:
                return None
            now, before = costs(current), costs(self._view([prev_cases]))
            grouped = self._view([self.results.grouped])
            grouped_before = self._view([prev_grouped])
            h = self._view([hospitals])
            h = h.select(h_id=h.hospital_id.cast("string"), level=h.level.cast("string"))
            groups = group_cost_changes(now, grouped, before, grouped_before)
            basic = basic_by_level(now, grouped, before, grouped_before, h)
        counts = {k: sum(1 for g in groups if g["change"] == k) for k in CHANGE_LABELS}
        for g in groups:
            g["change_label"] = CHANGE_LABELS[g["change"]]
        return {
            "year": year,
            "previous_year": year - 1,
            "groups_compared": len(groups),
            "cheaper": counts["cheaper"],
            "dearer": counts["dearer"],
            "same": counts["same"],
            "top_groups": groups[:10],
            "basic_by_level": basic,
            "basic_cases": sum(b["cases"] for b in basic),
            "basic_previous_cases": sum(b["previous_cases"] for b in basic),
        }

    def _inpatient_fund(
        self, scope: CaseScope, cases: ir.Table, dip_fund: int | None
    ) -> dict[str, Any]:
        """住院统筹基金支出 = DIP fund payable + the fund paid for the cases not settled by DIP
        (`not_dip.parquet` beside the scored results), and the DIP share of it."""
        scored = self.results.scored
        path = scored.parent / "not_dip.parquet" if scored is not None else None
        if dip_fund is None or path is None or not path.exists():
            return {}
        nd = self._view([path])
        if "ffs_fund_fen" not in nd.columns:
            return {}
        if not scope.whole_region:
            keys = [k for k in ("hospital_id", "case_id") if k in nd.columns]
            nd = nd.semi_join(cases.select(*keys), keys)
        other = int(nd.aggregate(x=nd.ffs_fund_fen.sum()).to_pyarrow().to_pylist()[0]["x"] or 0)
        total = int(dip_fund) + other
        return {
            "not_dip_fund_fen": other,
            "inpatient_fund_fen": total,
            "dip_fund_share": int(dip_fund) / total if total else None,
        }

    # -- directory ----------------------------------------------------------------------------
    def directory_versions(self) -> list[Path]:
        """directory.parquet plus any versions under directories/ (newest last)."""
        found = []
        extra = self._directories_dir
        if os.path.isdir(extra):
            found += sorted(extra.glob("*.parquet"))
        main = self._directory_file
        if os.path.exists(main):
            found.append(main)
        return found

    def directory_path(self, version: str | None) -> Path | None:
        versions = self.directory_versions()
        if not versions:
            return None
        if version:
            for p in versions:
                if p.stem == version or p.name == version:
                    return p
            return None
        return versions[-1]

    def directory_page(
        self,
        version: str | None,
        query: str = "",
        group_type: str = "",
        page: int = 1,
        page_size: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        path = self.directory_path(version)
        if path is None:
            return [], 0
        with self._lock:
            d = self._view([path])
            if query:
                q = query.strip()
                d = d.filter(
                    d.group_code.contains(q)
                    | d.group_name.contains(q)
                    | d.diagnosis_key.startswith(q)
                )
            local = (
                (d.origin == "local").fill_null(False)
                if "origin" in d.columns
                else ibis.literal(False)
            )
            if group_type == "new":  # 新增病种: added locally, whatever their type
                d = d.filter(local)
            elif group_type:
                d = d.filter((d.group_type == group_type) & ~local)
            total = int(d.count().execute())
            cols = [
                c
                for c in (
                    "group_code",
                    "group_name",
                    "group_type",
                    "diagnosis_key",
                    "procedure_key",
                    "score",
                    "mean_cost_fen",
                    "case_count",
                    "cv",
                    "origin",
                    "added_by",
                    "added_on",
                    "added_basis",
                )
                if c in d.columns
            ]
            rows = (
                d.select(*cols)
                .order_by("group_code")
                .limit(page_size, offset=(max(page, 1) - 1) * page_size)
                .to_pyarrow()
                .to_pylist()
            )
        return rows, total

    def directory_table(self, version: str | None, path: Path | None = None) -> pa.Table | None:
        """A directory version as Arrow (cached per file version); `path`: the file, when
        the caller already looked it up (`directory_path`)."""
        path = path or self.directory_path(version)
        return self._small_table(path) if path else None

    def policy_path(self) -> Path | None:
        p = self._policy_file
        return p if os.path.exists(p) else None

    def demo_summary(self) -> dict[str, Any]:
        p = self.data_dir / "demo-summary.json"
        if not p.exists():
            return {}
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


_SCORED_SHOWN = (
    "case_id",
    "deviation",
    "case_score",
    "hospital_coefficient",
    "settled_score",
    "point_value",
    "dip_amount_fen",
    "personal_share_fen",
    "fund_payable_fen",
    "ffs_fund_fen",
    "explanation",
)


def valid_month(text: str | None) -> str | None:
    if text and MONTH.match(text.strip()):
        return text.strip()
    return None


def yuan(fen: int | None) -> str:
    """Fen → '1,234.56' (display only)."""
    if not isinstance(fen, int | Decimal):
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def fmt_decimal(value: Decimal | None, places: int = 4) -> str:
    if not isinstance(value, int | float | Decimal):
        return "—"
    return f"{Decimal(value):,.{places}f}"


__all__ = ["CaseFilters", "CasePage", "RegionData", "dt", "ibis"]
