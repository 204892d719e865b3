"""The national grouping scheme as a region's starting directory (national-formats.md §4).

A national-style scheme (核心病种 by diagnosis subcategory + procedure condition, 综合病种 by
category and procedure type) is read as a *frame*, then localised with the region's history:

1. the history is grouped with the frame (the engine's own grouper);
2. core groups under the region's case threshold (the policy's ``directory.core_threshold``)
   are merged away — their cases fall to the comprehensive group of their category and
   procedure type, which is added when the frame lacks it — each merge reported with its
   reason;
3. the history is grouped again with the reduced frame, and every group's mean cost (year
   weights and trimming of the policy), score (mean ÷ all-case mean × base score) and level
   means come from the local cases. Groups no local case reaches are reported and left out.

`directory diff NATIONAL LOCAL` then shows the local directory against the national frame.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from opendip.codes import CodeTables
from opendip.contract import DIRECTORY, HOSPITAL_LEVELS
from opendip.directory.build import (
    _core_threshold,
    _fen,
    _row,
    _trimmed,
    _weighted_means,
    _yearly,
    comprehensive_code,
)
from opendip.directory.io import PROCEDURE_TYPE_LABELS, load_official_directory
from opendip.directory.keys import TYPE_LABEL, with_keys
from opendip.grouping import group_cases
from opendip.policy import Policy

#: The demo national scheme (built by scripts/build_demo_national_scheme.py; not official).
DEMO_SCHEME = (
    Path(__file__).resolve().parent.parent / "data" / "directory" / "national-scheme-demo.csv"
)
#: Short type labels of national tables → the labels the directory loader reads.
_KIND_TEXT = {"核心": "核心病种", "综合": "综合病种", "基层": "基层病种", "特殊": "特殊病种"}
#: Column of the national table holding a comprehensive row's procedure type.
_TYPE_HEADERS = ("手术操作类型", "治疗方式", "操作类型")
#: Placeholder score of a frame row without one (the frame's scores are replaced locally).
_PLACEHOLDER_SCORE = "100"
MERGE_SCHEMA = pa.schema(
    [
        ("group_code", pa.string()),
        ("group_name", pa.string()),
        ("cases", pa.int64()),
        ("threshold", pa.int64()),
        ("merged_into", pa.string()),
        ("reason", pa.string()),
    ]
)


@dataclass
class LocalisedDirectory:
    frame: pa.Table  # the national frame as read (DIRECTORY contract, frame scores)
    table: pa.Table  # the local directory (DIRECTORY contract)
    merged: pa.Table  # MERGE_SCHEMA: core groups merged into comprehensive groups, and why
    dropped: list[str]  # frame groups no local case reaches
    metrics: dict[str, Any] = field(default_factory=dict)


def load_national_scheme(path: str | Path, codes: CodeTables) -> pa.Table:
    """Read a national-style scheme (CSV/Excel: 病种编码, 病种类型 核心/综合, 主要诊断编码,
    手术操作编码 with '/' any-of and '+' all-of, 手术操作类型 for comprehensive rows, 分值
    optional) as a DIRECTORY table; errors name the row (the directory loader's checks)."""
    from opendip.ingest.readers import read_file

    raw = read_file(path).table
    headers = [h.strip() for h in raw.column_names]
    rows = [
        {h.strip(): ("" if v is None else str(v)).strip() for h, v in r.items()}
        for r in raw.to_pylist()
    ]  # a scheme has a few thousand rows
    type_header = next((h for h in _TYPE_HEADERS if h in headers), None)
    out_headers = [h for h in headers if h not in _TYPE_HEADERS]
    if not any(h in ("分值", "病种分值") for h in headers):
        out_headers.append("分值")
    for r in rows:
        kind = r.get("病种类型", "")
        r["病种类型"] = _KIND_TEXT.get(kind, kind)
        if type_header and r["病种类型"] == "综合病种" and not r.get("手术操作编码"):
            r["手术操作编码"] = r.get(type_header, "")
        r.setdefault("分值", _PLACEHOLDER_SCORE)
        if not r.get("分值") and not r.get("病种分值"):
            r["分值"] = _PLACEHOLDER_SCORE
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / f"{Path(path).stem}.csv"
        with copy.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(out_headers)
            for r in rows:
                w.writerow([r.get(h, "") for h in out_headers])
        return load_official_directory(copy, codes)


#: Kinds of a scheme's procedure exclusion table (national-formats.md §4.5).
EXCLUSION_KINDS = {
    "灰码": "grey", "grey": "grey", "非必选": "optional", "选择性": "optional",
    "optional": "optional", "中医必选": "tcm", "tcm": "tcm",
}  # fmt: skip


def load_exclusions(path: str | Path) -> pa.Table:
    """A scheme's procedure exclusion table (手术操作代码 / 代码, 类型 灰码 / 非必选 / 中医必选):
    code, kind. Errors name the row."""
    from opendip.codes.normalise import normalise_code
    from opendip.directory.io import DirectoryFileError
    from opendip.ingest.readers import read_file

    raw = read_file(path).table
    headers = {h.strip(): h for h in raw.column_names}
    code_h = next(
        (headers[h] for h in ("手术操作代码", "手术操作编码", "代码") if h in headers), None
    )
    kind_h = next((headers[h] for h in ("类型", "除外类型") if h in headers), None)
    if code_h is None:
        raise DirectoryFileError(str(path), ["缺少列：手术操作代码"])
    rows, problems = [], []
    for i, r in enumerate(raw.to_pylist(), start=2):
        code = normalise_code(str(r.get(code_h) or ""))
        kind_text = str(r.get(kind_h) or "灰码").strip() if kind_h else "灰码"
        kind = EXCLUSION_KINDS.get(kind_text)
        if not code:
            problems.append(f"第 {i} 行：手术操作代码为空")
        elif kind is None:
            problems.append(f"第 {i} 行：类型 {kind_text!r} 无效（灰码、非必选、中医必选）")
        else:
            rows.append({"code": code, "kind": kind})
    if problems:
        raise DirectoryFileError(str(path), problems)
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("code", pa.string()), ("kind", pa.string())])
    )


def with_exclusions(policy: Policy, exclusions: pa.Table | None) -> Policy:
    """The policy with the scheme's excluded procedures added to
    `grouping.ignore_procedure_prefixes` (they are ignored when matching)."""
    if exclusions is None or exclusions.num_rows == 0:
        return policy
    ignore = list(dict.fromkeys([*policy.grouping.ignore_procedure_prefixes,
                                 *exclusions["code"].to_pylist()]))  # fmt: skip
    grouping = policy.grouping.model_copy(update={"ignore_procedure_prefixes": ignore})
    return policy.model_copy(update={"grouping": grouping})


def _grouped_with_year(
    history: ir.Table,
    directory: pa.Table,
    procedure_types: ir.Table,
    policy: Policy,
    diagnosis_codes: ir.Table | None,
) -> ir.Table:
    grouped = group_cases(
        history, ibis.memtable(directory), procedure_types, policy, None, diagnosis_codes
    )
    cases = history.select(
        "case_id", "hospital_id", "total_cost", year=history.discharge_date.year()
    )
    return cases.join(grouped.select("case_id", "group_code", "group_type"), "case_id")


def localise(
    frame: pa.Table,
    history: ir.Table,
    hospitals: ir.Table,
    procedure_types: ir.Table,
    policy: Policy,
    diagnosis_codes: ir.Table | None = None,
    exclusions: pa.Table | None = None,
) -> LocalisedDirectory:
    """The local directory from the national `frame` and the region's `history` (see the
    module docstring). `history` holds the policy's directory years (others are ignored).
    `exclusions` (code, kind): the scheme's excluded procedures, ignored when matching (the
    region then groups with them in `grouping.ignore_procedure_prefixes`, `with_exclusions`)."""
    policy = with_exclusions(policy, exclusions)
    weights = {int(y): Decimal(w) for y, w in policy.directory.year_weights.items()}
    history = history.filter(history.discharge_date.year().isin(list(weights)))
    frame = DIRECTORY.conform(frame)

    # 1. group the history with the national frame
    first = _grouped_with_year(history, frame, procedure_types, policy, diagnosis_codes)
    counts_t = first.group_by("group_code").aggregate(n=first.count()).to_pyarrow()
    counts = dict(zip(counts_t["group_code"].to_pylist(), counts_t["n"].to_pylist(), strict=True))
    core_mask = pc.equal(frame["group_type"], "core")
    core_codes = frame.filter(core_mask)["group_code"].to_pylist()
    core_counts = {(c,): int(counts.get(c, 0)) for c in core_codes}
    threshold = (
        _core_threshold({k: n for k, n in core_counts.items() if n}, policy)
        if any(core_counts.values())
        else 1
    )
    merged_codes = [c for c in core_codes if core_counts[(c,)] < threshold]

    # 2. the merged groups' cases → comprehensive (category, procedure type) rows
    keyed = with_keys(
        history.mutate(_rid=ibis.row_number()), policy, procedure_types, row_key="_rid"
    ).select("case_id", "category", "proc_type")
    moved = (
        first.filter(first.group_code.isin(merged_codes) if merged_codes else ibis.literal(False))
        if merged_codes
        else None
    )
    unplaced = first.filter(first.group_type.isin(["fallback", "unmatched"]))
    need = unplaced if moved is None else unplaced.union(moved)
    need = need.join(keyed, "case_id")
    pairs = need.group_by(["group_code", "category", "proc_type"]).aggregate(n=need.count())
    pairs_t = pairs.to_pyarrow().to_pylist()
    existing = {
        (r["diagnosis_key"], r["procedure_key"]): r["group_code"]
        for r in frame.filter(pc.equal(frame["group_type"], "comprehensive")).to_pylist()
    }
    added: dict[tuple[str, str], dict[str, Any]] = {}
    into: dict[str, set[str]] = {}
    merged = set(merged_codes)
    for r in pairs_t:
        if r["category"] is None or r["proc_type"] is None:
            continue
        key = (r["category"], r["proc_type"])
        code = comprehensive_code(*key)
        if key not in existing and key not in added:
            added[key] = {
                "group_code": code,
                "group_name": f"综合病种 {key[0]} {TYPE_LABEL[key[1]]}",
                "group_type": "comprehensive",
                "diagnosis_key": key[0],
                "procedure_key": key[1],
                "procedure_match": "type",
                "score": Decimal(_PLACEHOLDER_SCORE),
                "mean_cost_fen": 0,
            }
        if r["group_code"] in merged:
            into.setdefault(r["group_code"], set()).add(existing.get(key, code))
    reduced = frame.filter(
        pc.invert(pc.is_in(frame["group_code"], pa.array(merged_codes, pa.string())))
    )
    if added:
        reduced = pa.concat_tables(
            [reduced, DIRECTORY.conform(pa.Table.from_pylist(list(added.values())))]
        )

    # 3. group again and take every group's figures from the local cases
    second = _grouped_with_year(history, reduced, procedure_types, policy, diagnosis_codes)
    second = second.filter(second.group_code.notnull()).left_join(
        hospitals.select("hospital_id", "level"), "hospital_id"
    )
    second = second.mutate(level=second.level.fill_null("unrated")).drop("hospital_id_right")
    trimmed = _trimmed(second, policy, ["group_code"]).cache()
    groups = _weighted_means(
        _yearly(trimmed, ["group_code"]).to_pyarrow().to_pylist(), weights, ["group_code"]
    )
    levels = _weighted_means(
        _yearly(trimmed, ["group_code", "level"]).to_pyarrow().to_pylist(),
        weights,
        ["group_code", "level"],
    )
    overall = _weighted_means(
        _yearly(trimmed.mutate(_all=ibis.literal("all")), ["_all"]).to_pyarrow().to_pylist(),
        weights,
        ["_all"],
    )
    big_m = overall[("all",)]["mean"]
    rows = []
    dropped = []
    for r in reduced.to_pylist():
        acc = groups.get((r["group_code"],))
        if acc is None:
            if r["group_type"] == "special":  # policy groups keep their frame figures
                rows.append(r)
            else:
                dropped.append(r["group_code"])
            continue
        row = _row(
            code=r["group_code"], name=r["group_name"], group_type=r["group_type"],
            dx_key=r["diagnosis_key"], proc_key=r["procedure_key"], match=r["procedure_match"],
            acc=acc, levels={lv: levels.get((r["group_code"], lv)) for lv in HOSPITAL_LEVELS},
            big_m=big_m, policy=policy,
        )  # fmt: skip
        row.pop("case_counts_by_year", None)
        if r["group_type"] == "basic":  # 同病同价
            for lv in HOSPITAL_LEVELS:
                row[f"mean_cost_{lv}_fen"] = row["mean_cost_fen"]
        rows.append(row)
    table = DIRECTORY.conform(pa.Table.from_pylist(rows)).sort_by(
        [("group_type", "ascending"), ("group_code", "ascending")]
    )
    names = dict(zip(frame["group_code"].to_pylist(), frame["group_name"].to_pylist(), strict=True))
    merged = pa.Table.from_pylist(
        [
            {
                "group_code": c,
                "group_name": names.get(c, c),
                "cases": core_counts[(c,)],
                "threshold": threshold,
                "merged_into": "、".join(sorted(into.get(c, set()))),
                "reason": f"本地历史病例数 {core_counts[(c,)]} 低于临界值 {threshold}"
                + ("，病例并入综合病种" if into.get(c) else "，本地无病例"),
            }
            for c in merged_codes
        ],
        schema=MERGE_SCHEMA,
    )
    in_groups = int(sum(v["n"] for v in groups.values()))
    metrics = {
        "frame_groups": frame.num_rows,
        "frame_core_groups": len(core_codes),
        "threshold": threshold,
        "merged_core_groups": len(merged_codes),
        "merged_with_cases": sum(1 for c in merged_codes if core_counts[(c,)] > 0),
        "added_comprehensive_groups": len(added),
        "dropped_groups": len(dropped),
        "local_groups": table.num_rows,
        "local_core_groups": int(pc.sum(pc.equal(table["group_type"], "core")).as_py() or 0),
        "history_cases_in_groups": in_groups,
        "all_case_mean_fen": _fen(big_m),
        "excluded_procedures": 0 if exclusions is None else exclusions.num_rows,
    }
    return LocalisedDirectory(frame, table, merged, dropped, metrics)


def entry_rate(
    cases: ir.Table,
    directory: pa.Table,
    procedure_types: ir.Table,
    policy: Policy,
    diagnosis_codes: ir.Table | None = None,
) -> tuple[int, int]:
    """(cases in a directory group, cases) of grouping `cases` with `directory`: 入组率 is
    their ratio (fallback and unmatched cases are not in a group)."""
    grouped = group_cases(
        cases, ibis.memtable(directory), procedure_types, policy, None, diagnosis_codes
    )
    summary = grouped.aggregate(
        n=grouped.count(),
        grouped=grouped.group_type.isin(["core", "comprehensive", "basic", "special"]).sum(),
    ).to_pyarrow()
    return int(summary["grouped"][0].as_py() or 0), int(summary["n"][0].as_py() or 0)


__all__ = [
    "MERGE_SCHEMA",
    "PROCEDURE_TYPE_LABELS",
    "LocalisedDirectory",
    "entry_rate",
    "load_national_scheme",
    "localise",
]


def write_national_scheme(directory: pa.Table, path: str | Path, codes: CodeTables) -> Path:
    """A directory's core and comprehensive rows as a national-style scheme file (CSV, the
    published column names; 分值 kept as the national reference score) — how the demo's
    national frame is made from a 'national' synthetic region."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = ["病种编码", "病种名称", "病种类型", "主要诊断编码", "主要诊断名称", "手术操作编码",
               "手术操作名称", "手术操作类型", "分值"]  # fmt: skip
    from opendip.codes.demo_build import zh_titles

    base = [r for r in codes.diagnoses.to_pylist() if r["code"] == f"{r['subcategory']}00"]
    dx_names = {r["subcategory"]: r["name"] for r in base}
    titles = zh_titles("icd10")
    px_names = {r["code"]: r["name"] for r in codes.procedures.to_pylist()}

    def dx_name(key: str) -> str:
        return dx_names.get(key) or titles.get(key.replace(".", ""), key)

    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        for r in directory.sort_by(
            [("group_type", "descending"), ("group_code", "ascending")]
        ).to_pylist():
            if r["group_type"] not in ("core", "comprehensive"):
                continue
            core = r["group_type"] == "core"
            proc = r["procedure_key"] or ""
            sep = "+" if "+" in proc else "/"
            names = sep.join(px_names.get(p, p) for p in proc.split(sep)) if core and proc else ""
            ptype = PROCEDURE_TYPE_LABELS.get(proc, proc)
            group_name = (
                f"{dx_name(r['diagnosis_key'])}：{names or '保守治疗'}"
                if core
                else f"{dx_name(r['diagnosis_key'])}（综合·{ptype}）"
            )
            w.writerow(
                [
                    r["group_code"], group_name, "核心" if core else "综合",
                    r["diagnosis_key"], dx_name(r["diagnosis_key"]),
                    proc if core else "", names,
                    ("保守治疗" if not proc else "相关手术") if core else ptype,
                    str(r["score"]),
                ]
            )  # fmt: skip
    return path
