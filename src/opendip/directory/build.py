"""Building the disease-group directory (病种目录库) from history (reference §3).

Heavy work (keys, trimming, per-group yearly means) is Ibis; the directory itself has a few
thousand rows, so scores are finished in Python with exact Decimals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.codes import category_table
from opendip.contract import DIRECTORY, HOSPITAL_LEVELS
from opendip.directory.keys import TYPE_LABEL, special_condition, with_keys
from opendip.directory.matching import best_core
from opendip.policy import Policy

CONSERVATIVE_LABEL = "保守"


class DirectoryBuildError(ValueError):
    """History that cannot give a directory (no cases in the policy's years ...)."""


@dataclass
class BuiltDirectory:
    table: pa.Table  # DIRECTORY contract + case_counts_by_year
    metrics: dict[str, Any]
    #: case_id, year, group_code of every history case the build counted (lazy; its
    #: backend's connection must stay open to read it).
    assignment: ir.Table | None = None


def core_code(dx_key: str, proc_key: str) -> str:
    return f"{dx_key}:{proc_key or CONSERVATIVE_LABEL}"


def comprehensive_code(level_key: str, proc_type: str) -> str:
    return f"综合:{level_key}:{TYPE_LABEL[proc_type]}"


def _trimmed(t: ir.Table, policy: Policy, keys: list[str]) -> ir.Table:
    trim = policy.directory.trim
    if trim.method == "none":
        return t
    if trim.method == "log_sd":
        w = ibis.window(group_by=keys)
        lc = t.total_cost.log()
        t = t.mutate(_lc=lc, _m=lc.mean().over(w), _s=lc.std().over(w), _n=t.count().over(w))
        k = float(trim.k)
        keep = (t._n < 3) | t._s.isnull() | ((t._lc - t._m).abs() <= k * t._s)
        return t.filter(keep).drop("_lc", "_m", "_s", "_n")
    w = ibis.window(group_by=keys, order_by=t.total_cost)
    t = t.mutate(_pr=ibis.percent_rank().over(w), _n=t.count().over(ibis.window(group_by=keys)))
    keep = (t._n < 5) | t._pr.between(float(trim.lower_pct), float(trim.upper_pct))
    return t.filter(keep).drop("_pr", "_n")


def _yearly(t: ir.Table, keys: list[str]) -> ir.Table:
    return t.group_by([*keys, "year"]).aggregate(
        n=t.count(),
        total=t.total_cost.sum(),
        sq=(t.total_cost.cast("float64") * t.total_cost.cast("float64")).sum(),
    )


def _weighted_means(
    rows: list[dict[str, Any]], weights: dict[int, Decimal], keys: list[str]
) -> dict[tuple, dict[str, Any]]:
    """Year-weighted mean (each year's mean × its weight, renormalised over years present)."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        k = tuple(r[c] for c in keys)
        acc = out.setdefault(
            k, {"wsum": Decimal(0), "wmean": Decimal(0), "n": 0, "by_year": {}, "tot": 0, "sq": 0.0}
        )
        w = weights.get(int(r["year"]), Decimal(0))
        mean = Decimal(int(r["total"])) / int(r["n"])
        acc["wsum"] += w
        acc["wmean"] += w * mean
        acc["n"] += int(r["n"])
        acc["by_year"][int(r["year"])] = int(r["n"])
        acc["tot"] += int(r["total"])
        acc["sq"] += float(r["sq"])
    for acc in out.values():
        acc["mean"] = acc["wmean"] / acc["wsum"] if acc["wsum"] else Decimal(acc["tot"]) / acc["n"]
        m = acc["tot"] / acc["n"]
        var = max(acc["sq"] / acc["n"] - m * m, 0.0)
        # 4 decimals: a published quality figure (and what the export writes and reads back)
        acc["cv"] = round((var**0.5) / m, 4) if m else None
    return out


def _fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


#: Rounds of "assign history cases to core rows → recompute the rows' means" at most. The
#: closest-mean tie-break reads the means, so the assignment is repeated until the means no
#: longer change (a fixed point: grouping the history with the built directory then gives
#: the very assignment the build counted). Two rounds are usual.
MAX_ASSIGNMENT_ROUNDS = 8


def build_directory(
    history: ir.Table,
    hospitals: ir.Table,
    procedure_types: ir.Table,
    policy: Policy,
    case_status: ir.Table | None = None,
    diagnosis_codes: ir.Table | None = None,
) -> BuiltDirectory:
    """Build the directory from history cases, hospitals (hospital_id, level) and procedure
    types (code, procedure_type). Cases QC marked blocking in `case_status` (case_id,
    blocking) are left out; history should be QC-clean. With `diagnosis_codes` (code,
    valid_as_main), cases whose main diagnosis grouping would refuse are left out too.

    Steps: keys → special groups set aside → trimming per key → core keys (threshold) →
    every remaining case assigned to the core row grouping would give it (same matching
    and tie-break as `opendip.grouping`, repeated until the means are stable) → the rest to
    comprehensive groups. `BuiltDirectory.assignment` lists each counted case's group.
    """
    d = policy.directory
    weights = {int(y): Decimal(w) for y, w in d.year_weights.items()}
    if case_status is not None:
        history = history.anti_join(
            case_status.filter(case_status.blocking).select("case_id"), "case_id"
        )
    if diagnosis_codes is not None:
        dx = diagnosis_codes.group_by(_dx=diagnosis_codes.code).aggregate(
            _main=diagnosis_codes.valid_as_main.fill_null(True).all()
        )
        dx = dx.filter(dx._main).select("_dx")
        history = history.semi_join(dx, history.main_diagnosis == dx._dx)
    con_cases = history.mutate(year=history.discharge_date.year())
    con_cases = con_cases.filter(con_cases.year.isin(list(weights)))
    con_cases = con_cases.left_join(hospitals.select("hospital_id", "level"), "hospital_id")
    # A surrogate row key: a case id repeated in history must not mix procedure sets.
    con_cases = con_cases.mutate(_rid=ibis.row_number())
    keyed = with_keys(con_cases, policy, procedure_types, row_key="_rid")
    keyed = keyed.select(
        "_rid",
        "case_id",
        "year",
        "total_cost",
        "main_diagnosis",
        "main_procedure",
        "department",
        "los_days",
        "dx_key",
        "category",
        "procedures",
        "n_procedures",
        "surgical",
        "proc_key",
        "proc_type",
        level=keyed.level.fill_null("unrated"),
    )
    # Cases grouping refuses (不入组规则) build no group.
    nfg = policy.grouping.not_for_grouping
    if nfg.main_diagnosis_prefixes:
        keyed = keyed.filter(~_any_prefix(keyed.main_diagnosis, nfg.main_diagnosis_prefixes))
    if nfg.procedure_prefixes:
        keyed = keyed.filter(
            keyed.procedures.filter(lambda p: _any_prefix(p, nfg.procedure_prefixes)).length() == 0
        )
    # Special groups route first (the first that matches, as in grouping): their cases do
    # not build core groups.
    special_code = ibis.null("string")
    for sg in reversed(d.special_groups):
        special_code = ibis.ifelse(
            special_condition(keyed, sg), ibis.literal(sg.code), special_code
        )
    # Materialised once: every aggregate below reads it (and the trimmed table).
    keyed = keyed.mutate(special_code=special_code).cache()
    total_cases = keyed.count().to_pyarrow().as_py()
    if not total_cases:
        raise DirectoryBuildError(f"历史数据中没有 {sorted(weights)} 年度的病例")
    special_rows = _special_rows(keyed, policy, weights)
    ordinary = keyed.filter(keyed.special_code.isnull())

    combo_keys = ["dx_key", "proc_key"]
    trimmed = _trimmed(ordinary, policy, combo_keys).cache()
    yearly = _yearly(trimmed, combo_keys).to_pyarrow().to_pylist()
    combos = _weighted_means(yearly, weights, combo_keys)
    counts = {k: v["n"] for k, v in combos.items()}
    threshold = _core_threshold(counts, policy)
    basic = {(b.diagnosis, b.procedure_key): b for b in d.basic_groups}
    core_keys = {k for k, n in counts.items() if n >= threshold or k in basic}

    all_mean = _weighted_means(
        _yearly(trimmed.mutate(_all=ibis.literal("all")), ["_all"]).to_pyarrow().to_pylist(),
        weights,
        ["_all"],
    )
    big_m = all_mean[("all",)]["mean"]

    # Core rows, then the assignment of every ordinary case to the row grouping gives it.
    core_meta = {}
    for key in sorted(core_keys):
        if key not in combos:
            continue
        dx, pk = key
        b = basic.get(key)
        core_meta[f"基层:{dx}" if b else core_code(dx, pk)] = (key, b)
    means = {code: combos[key]["mean"] for code, (key, _) in core_meta.items()}
    assigned, group_acc, rounds, settled = _assign_core(
        trimmed, core_meta, means, big_m, policy, weights
    )
    by_level = _weighted_means(
        _yearly(assigned.filter(assigned.core_code.notnull()), ["core_code", "level"])
        .to_pyarrow()
        .to_pylist(),
        weights,
        ["core_code", "level"],
    )

    # Comprehensive groups: the rest, by category → block → chapter and procedure type.
    cats = ibis.memtable(category_table())
    rest = assigned.filter(assigned.core_code.isnull()).drop("core_code")
    rest = rest.left_join(cats, "category")
    comp_rows, comp_level_rows, comp_assigned = _comprehensive(rest, policy, weights)

    rows: list[dict[str, Any]] = []
    for code, (key, b) in core_meta.items():
        dx, pk = key
        # A row no case ends in (a tie-break other than the default can do that) keeps the
        # figures of its own key.
        acc = group_acc.get((code,), combos[key])
        row = _row(
            code=code,
            name=(b.name if b and b.name else f"{dx} {pk or CONSERVATIVE_LABEL}"),
            group_type="basic" if b else "core",
            dx_key=dx,
            proc_key=pk,
            match="none" if not pk else "all",
            acc=acc,
            levels={lv: by_level.get((code, lv)) for lv in HOSPITAL_LEVELS},
            big_m=big_m,
            policy=policy,
        )
        if b:  # 同病同价: one mean for all levels
            for lv in HOSPITAL_LEVELS:
                row[f"mean_cost_{lv}_fen"] = row["mean_cost_fen"]
        rows.append(row)
    for (level_key, ptype), acc in sorted(comp_rows.items()):
        rows.append(
            _row(
                code=comprehensive_code(level_key, ptype),
                name=f"综合病种 {level_key} {TYPE_LABEL[ptype]}",
                group_type="comprehensive",
                dx_key=level_key,
                proc_key=ptype,
                match="type",
                acc=acc,
                levels={lv: comp_level_rows.get((level_key, ptype, lv)) for lv in HOSPITAL_LEVELS},
                big_m=big_m,
                policy=policy,
            )
        )
    rows.extend(_special_directory_rows(special_rows, policy, big_m))
    table, missing_local = _mark_local(_to_table(rows), policy)
    core_cases = sum(int(v["n"]) for v in group_acc.values())
    metrics = _metrics(table, core_cases, combos, total_cases, threshold)
    metrics["all_case_mean_fen"] = _fen(big_m)
    metrics["assignment_rounds"] = rounds
    metrics["assignment_settled"] = settled
    if missing_local:
        metrics["local_groups_missing"] = missing_local
    special = keyed.filter(keyed.special_code.notnull())
    assignment = ibis.union(
        assigned.filter(assigned.core_code.notnull()).select(
            "case_id", "year", group_code="core_code"
        ),
        comp_assigned,
        special.select("case_id", "year", group_code="special_code"),
    )
    return BuiltDirectory(table, metrics, assignment)


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def _assign_core(
    trimmed: ir.Table,
    core_meta: dict[str, tuple[tuple[str, str], Any]],
    means: dict[str, Decimal],
    big_m: Decimal,
    policy: Policy,
    weights: dict[int, Decimal],
) -> tuple[ir.Table, dict[tuple, dict[str, Any]], int, bool]:
    """Assign trimmed ordinary cases to core rows with grouping's own rule, recomputing the
    rows' means from the cases they get until the means (what the tie-break reads) are
    stable. Returns the cases with `core_code` (null: no core row), each row's figures, the
    number of rounds and whether the means settled (else the round limit was hit)."""
    schema = pa.schema(
        [
            ("group_code", pa.string()),
            ("group_type", pa.string()),
            ("diagnosis_key", pa.string()),
            ("procedure_key", pa.string()),
            ("score", pa.decimal128(18, 4)),
            ("mean_cost_fen", pa.int64()),
        ]
    )
    group_acc: dict[tuple, dict[str, Any]] = {}
    seen: dict[str, tuple[int, Decimal]] | None = None
    assigned = trimmed.mutate(core_code=ibis.null("string"))
    rounds = 0
    while True:
        figures = {c: (_fen(m), _score(m, big_m, policy)) for c, m in means.items()}
        if figures == seen:
            return assigned, group_acc, rounds, True
        if rounds == MAX_ASSIGNMENT_ROUNDS:
            return assigned, group_acc, rounds, False
        seen = figures
        rounds += 1
        rows = pa.table(
            {
                "group_code": list(core_meta),
                "group_type": ["basic" if b else "core" for _, b in core_meta.values()],
                "diagnosis_key": [k[0] for k, _ in core_meta.values()],
                "procedure_key": [k[1] for k, _ in core_meta.values()],
                "score": [figures[c][1] for c in core_meta],
                "mean_cost_fen": [figures[c][0] for c in core_meta],
            },
            schema=schema,
        )
        directory = ibis.memtable(rows).mutate(
            procedure_match=ibis.ifelse(ibis._.procedure_key == "", "none", "all")
        )
        best = best_core(trimmed, directory, policy, row_key="_rid").select("_rid", "core_code")
        assigned = trimmed.left_join(best, "_rid")
        assigned = assigned.drop(*[c for c in assigned.columns if c == "_rid_right"]).cache()
        group_acc = _weighted_means(
            _yearly(assigned.filter(assigned.core_code.notnull()), ["core_code"])
            .to_pyarrow()
            .to_pylist(),
            weights,
            ["core_code"],
        )
        means = {c: group_acc[(c,)]["mean"] if (c,) in group_acc else m for c, m in means.items()}


def _score(mean: Decimal, big_m: Decimal, policy: Policy) -> Decimal:
    q = Decimal(1).scaleb(-policy.directory.score_decimals)
    return (mean / big_m * policy.directory.base_score).quantize(q, rounding=ROUND_HALF_UP)


def _row(
    *,
    code: str,
    name: str,
    group_type: str,
    dx_key: str,
    proc_key: str,
    match: str,
    acc: dict[str, Any],
    levels: dict[str, Any],
    big_m: Decimal,
    policy: Policy,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "group_code": code,
        "group_name": name,
        "group_type": group_type,
        "diagnosis_key": dx_key,
        "procedure_key": proc_key,
        "procedure_match": match,
        "score": _score(acc["mean"], big_m, policy),
        "mean_cost_fen": _fen(acc["mean"]),
        "case_count": acc["n"],
        "cv": acc["cv"],
        "score_per_day": None,
        "case_counts_by_year": json.dumps(acc["by_year"], sort_keys=True),
    }
    for lv in HOSPITAL_LEVELS:
        row[f"mean_cost_{lv}_fen"] = _fen(levels[lv]["mean"]) if levels.get(lv) else None
    return row


def _core_threshold(counts: dict[tuple, int], policy: Policy) -> int:
    ct = policy.directory.core_threshold
    if ct.method == "fixed":
        return int(ct.min_cases or 1)
    total = sum(counts.values())
    target = float(ct.min_share or 0)
    best = 1
    cum = 0
    for c in sorted(set(counts.values()), reverse=True):
        cum = sum(n for n in counts.values() if n >= c)
        if cum / total >= target:
            best = c
            break
    return best


def _comprehensive(
    rest: ir.Table, policy: Policy, weights: dict[int, Decimal]
) -> tuple[dict, dict, ir.Table]:
    """Comprehensive groups' figures (by level key × type, and by hospital level) and the
    cases each took (case_id, year, group_code)."""
    minimum = policy.directory.comprehensive.min_cases
    levels = policy.directory.comprehensive.levels
    assigned: dict[tuple, dict[str, Any]] = {}
    assigned_levels: dict[tuple, Any] = {}
    taken: list[ir.Table] = []
    labels = ibis.cases(
        *[(rest.proc_type == k, ibis.literal(v)) for k, v in TYPE_LABEL.items()], else_=""
    )
    remaining = rest.mutate(_type_label=labels)
    for i, level in enumerate(levels):
        keyed = remaining.mutate(level_key=remaining[level], ptype=remaining.proc_type)
        counts = keyed.group_by(["level_key", "ptype"]).aggregate(n=keyed.count())
        last = i == len(levels) - 1
        ok = counts if last else counts.filter(counts.n >= minimum)
        chosen = keyed.semi_join(ok, ["level_key", "ptype"])
        taken.append(
            chosen.select(
                "case_id",
                "year",
                group_code=ibis.literal("综合:") + chosen.level_key + ":" + chosen._type_label,
            )
        )
        assigned.update(
            _weighted_means(
                _yearly(chosen, ["level_key", "ptype"]).to_pyarrow().to_pylist(),
                weights,
                ["level_key", "ptype"],
            )
        )
        assigned_levels.update(
            _weighted_means(
                _yearly(chosen, ["level_key", "ptype", "level"]).to_pyarrow().to_pylist(),
                weights,
                ["level_key", "ptype", "level"],
            )
        )
        remaining = keyed.anti_join(ok, ["level_key", "ptype"]).drop("level_key", "ptype")
    empty = rest.select("case_id", "year", group_code=ibis.literal("")).filter(ibis.literal(False))
    return assigned, assigned_levels, ibis.union(empty, *taken) if taken else empty


def _special_rows(
    keyed: ir.Table, policy: Policy, weights: dict[int, Decimal]
) -> dict[str, dict[str, Any]]:
    out = {}
    for sg in policy.directory.special_groups:
        sub = keyed.filter(keyed.special_code == sg.code).mutate(_g=ibis.literal(sg.code))
        means = _weighted_means(_yearly(sub, ["_g"]).to_pyarrow().to_pylist(), weights, ["_g"])
        levels = _weighted_means(
            _yearly(sub, ["_g", "level"]).to_pyarrow().to_pylist(), weights, ["_g", "level"]
        )
        if (sg.code,) in means:
            out[sg.code] = {
                "acc": means[(sg.code,)],
                "levels": {lv: levels.get((sg.code, lv)) for lv in HOSPITAL_LEVELS},
            }
    return out


def _special_directory_rows(
    found: dict[str, dict[str, Any]], policy: Policy, big_m: Decimal
) -> list[dict[str, Any]]:
    rows = []
    for sg in policy.directory.special_groups:
        acc = found.get(
            sg.code, {"acc": {"mean": big_m, "n": 0, "cv": None, "by_year": {}}, "levels": {}}
        )
        row = _row(
            code=sg.code, name=sg.name, group_type="special",
            dx_key="|".join(sg.diagnosis_prefixes), proc_key="|".join(sg.procedure_prefixes),
            match="prefix", acc=acc["acc"], levels=acc["levels"], big_m=big_m, policy=policy,
        )  # fmt: skip
        if sg.kind == "bed_day":
            row["score_per_day"] = sg.score_per_day
        rows.append(row)
    return rows


def _mark_local(table: pa.Table, policy: Policy) -> tuple[pa.Table, list[str]]:
    """Mark the policy's 新增病种 (directory.local_groups) with origin local and their
    provenance; returns the listed codes the built directory does not have."""
    local = {g.group_code: g for g in policy.directory.local_groups}
    if not local:
        return table, []
    codes = table["group_code"].to_pylist()
    rows = [local.get(c) for c in codes]
    cols = {
        "origin": pa.array(["local" if g else None for g in rows], pa.string()),
        "added_by": pa.array([g.added_by if g else None for g in rows], pa.string()),
        "added_on": pa.array([g.added_on if g else None for g in rows], pa.date32()),
        "added_basis": pa.array([g.added_basis if g else None for g in rows], pa.string()),
    }
    for name, arr in cols.items():
        table = table.set_column(table.column_names.index(name), name, arr)
    return table, sorted(set(local) - set(codes))


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = DIRECTORY.schema.append(pa.field("case_counts_by_year", pa.string()))
    table = pa.Table.from_pylist(rows, schema=schema)
    return table.sort_by([("group_type", "ascending"), ("group_code", "ascending")])


def _metrics(
    table: pa.Table, core_cases: int, combos: dict, total_cases: int, threshold: int
) -> dict[str, Any]:
    types: dict[str, int] = {}
    for t in table["group_type"].to_pylist():
        types[t] = types.get(t, 0) + 1
    from opendip.directory.io import directory_kinds

    trimmed_cases = sum(v["n"] for v in combos.values())
    # RIV over combinations (core) on trimmed costs: 1 − within-group SS / total SS.
    total_n = sum(v["n"] for v in combos.values())
    total_sum = sum(v["tot"] for v in combos.values())
    total_sq = sum(v["sq"] for v in combos.values())
    grand = total_sum / total_n
    tss = total_sq - total_n * grand * grand
    wss = sum(v["sq"] - v["tot"] * v["tot"] / v["n"] for v in combos.values())
    cvs = sorted(c for c in table["cv"].to_pylist() if c is not None)
    q = lambda p: round(cvs[int(p * (len(cvs) - 1))], 4) if cvs else None  # noqa: E731
    return {
        "groups_by_type": types,
        "groups_by_kind": directory_kinds(table),
        "core_threshold": threshold,
        "history_cases": total_cases,
        "cases_after_trimming": trimmed_cases,
        "core_case_share": round(core_cases / trimmed_cases, 4) if trimmed_cases else 0.0,
        "riv": round(1 - wss / tss, 4) if tss > 0 else None,
        "cv_quantiles": {"p25": q(0.25), "p50": q(0.5), "p75": q(0.75), "p90": q(0.9)},
    }
