"""Directory files: load an official directory, export for publication, diff two versions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.codes import CodeTables, diagnosis_subcategory
from opendip.contract import DIRECTORY, GROUP_TYPES, HOSPITAL_LEVEL_LABELS, HOSPITAL_LEVELS
from opendip.money import fen_to_yuan, yuan_to_fen

TYPE_LABELS = {
    "core": "核心病种",
    "comprehensive": "综合病种",
    "basic": "基层病种",
    "special": "特殊病种",
}
OFFICIAL_HEADERS = {
    "病种编码": "group_code",
    "病种名称": "group_name",
    "病种类型": "group_type",
    "主要诊断编码": "diagnosis_key",
    "诊断编码": "diagnosis_key",
    "手术操作编码": "procedure_key",
    "病种分值": "score",
    "分值": "score",
    "次均费用": "mean_cost_yuan",
    "病例数": "case_count",
}


class DirectoryFileError(ValueError):
    """A directory file that cannot be used; lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"病种目录 {source} 有 {len(problems)} 处错误：\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def read_directory(path: str | Path) -> pa.Table:
    return pq.read_table(path)


def load_official_directory(path: str | Path, codes: CodeTables) -> pa.Table:
    """Read a region's published directory (CSV UTF-8/GBK or .xlsx, Chinese headers).

    Procedure conditions: 'A+B' all of, 'A/B' any of, empty = conservative.
    """
    from opendip.ingest.readers import read_file

    raw = read_file(path).table
    mapping = {
        h: OFFICIAL_HEADERS[h.strip()] for h in raw.column_names if h.strip() in OFFICIAL_HEADERS
    }
    problems: list[str] = []
    missing = {"group_code", "diagnosis_key", "score"} - set(mapping.values())
    if missing:
        raise DirectoryFileError(str(path), [f"缺少列：{'、'.join(sorted(missing))}"])
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    known_dx = set(codes.diagnoses["subcategory"].to_pylist()) | set(
        codes.diagnoses["category"].to_pylist()
    )
    known_proc = set(codes.procedures["code"].to_pylist())
    for i, values in enumerate(raw.to_pylist(), start=2):
        r = {mapping[h]: (v or "").strip() for h, v in values.items() if h in mapping}
        code = r.get("group_code", "")
        where = f"第 {i} 行"
        if not code:
            problems.append(f"{where}：病种编码为空")
            continue
        if code in seen:
            problems.append(f"{where}：病种编码 {code} 与第 {seen[code]} 行重复")
            continue
        seen[code] = i
        try:
            score = Decimal(r.get("score", ""))
            if score <= 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"{where}：病种 {code} 分值缺失或无效（{r.get('score')!r}）")
            continue
        dx = r.get("diagnosis_key", "")
        if diagnosis_subcategory(dx) not in known_dx and dx not in known_dx:
            problems.append(f"{where}：病种 {code} 的诊断编码 {dx} 不在医保版代码表中")
        key = r.get("procedure_key", "")
        match = "none" if not key else "any" if "/" in key else "all"
        procs = [p for p in key.replace("/", "+").split("+") if p]
        for p in procs:
            if p not in known_proc:
                problems.append(f"{where}：病种 {code} 的手术操作编码 {p} 不在医保版代码表中")
        group_type = {v: k for k, v in TYPE_LABELS.items()}.get(
            r.get("group_type", ""), r.get("group_type") or "core"
        )
        if group_type not in GROUP_TYPES:
            problems.append(f"{where}：病种类型 {r.get('group_type')!r} 无效")
        mean = yuan_to_fen(r["mean_cost_yuan"]) if r.get("mean_cost_yuan") else 0
        rows.append(
            {
                "group_code": code,
                "group_name": r.get("group_name") or code,
                "group_type": group_type,
                "diagnosis_key": diagnosis_subcategory(dx) if len(dx) > 5 else dx,
                "procedure_key": "+".join(sorted(procs)),
                "procedure_match": match,
                "score": score,
                "mean_cost_fen": mean,
                "case_count": int(r["case_count"]) if r.get("case_count") else None,
            }
        )
    if problems:
        raise DirectoryFileError(str(path), problems)
    return DIRECTORY.conform(pa.Table.from_pylist(rows))


def export_excel(
    directory: pa.Table, path: str | Path, metrics: dict[str, Any] | None = None
) -> Path:
    """The directory as a publication workbook (病种目录 + 目录指标)."""
    import xlsxwriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet = book.add_worksheet("病种目录")
    headers = ["病种编码", "病种名称", "病种类型", "诊断键", "手术操作", "病种分值", "次均费用(元)"]
    headers += [f"次均费用-{HOSPITAL_LEVEL_LABELS[lv]}(元)" for lv in HOSPITAL_LEVELS] + [
        "病例数",
        "变异系数",
    ]
    for c, h in enumerate(headers):
        sheet.write(0, c, h, head)
    for r, row in enumerate(directory.to_pylist(), start=1):
        values = [
            row["group_code"], row["group_name"], TYPE_LABELS.get(row["group_type"], row["group_type"]),
            row["diagnosis_key"], row["procedure_key"] or "保守治疗", float(row["score"]),
        ]  # fmt: skip
        for c, v in enumerate(values):
            sheet.write(r, c, v)
        for c, key in enumerate(
            ["mean_cost_fen", *[f"mean_cost_{lv}_fen" for lv in HOSPITAL_LEVELS]], start=6
        ):
            if row.get(key) is not None:
                sheet.write_number(r, c, float(fen_to_yuan(row[key])), money)
        sheet.write(r, 11, row.get("case_count") or 0)
        if row.get("cv") is not None:
            sheet.write_number(r, 12, round(row["cv"], 4))
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, 1, 28)
    if metrics:
        ms = book.add_worksheet("目录指标")
        for r, (k, v) in enumerate(metrics.items()):
            ms.write(r, 0, k)
            ms.write(r, 1, str(v))
    book.close()
    return path


def diff_directories(
    old: pa.Table,
    new: pa.Table,
    grouped_old: pa.Table | None = None,
    grouped_new: pa.Table | None = None,
) -> dict[str, pa.Table]:
    """Groups added, removed, score changes; with grouped cases, splits/merges and cases moved."""
    o = {r["group_code"]: r for r in old.to_pylist()}
    n = {r["group_code"]: r for r in new.to_pylist()}
    added = [
        {"group_code": k, "group_name": n[k]["group_name"], "score": n[k]["score"]}
        for k in sorted(set(n) - set(o))
    ]
    removed = [
        {"group_code": k, "group_name": o[k]["group_name"], "score": o[k]["score"]}
        for k in sorted(set(o) - set(n))
    ]
    changed = []
    for k in sorted(set(o) & set(n)):
        if o[k]["score"] != n[k]["score"]:
            pct = (n[k]["score"] - o[k]["score"]) / o[k]["score"] * 100 if o[k]["score"] else None
            changed.append(
                {
                    "group_code": k,
                    "old_score": o[k]["score"],
                    "new_score": n[k]["score"],
                    "change_pct": round(float(pct), 2) if pct is not None else None,
                }
            )
    out = {
        "added": pa.Table.from_pylist(
            added,
            schema=pa.schema(
                [
                    ("group_code", pa.string()),
                    ("group_name", pa.string()),
                    ("score", pa.decimal128(18, 4)),
                ]
            ),
        ),
        "removed": pa.Table.from_pylist(
            removed,
            schema=pa.schema(
                [
                    ("group_code", pa.string()),
                    ("group_name", pa.string()),
                    ("score", pa.decimal128(18, 4)),
                ]
            ),
        ),
        "score_changes": pa.Table.from_pylist(
            changed,
            schema=pa.schema(
                [
                    ("group_code", pa.string()),
                    ("old_score", pa.decimal128(18, 4)),
                    ("new_score", pa.decimal128(18, 4)),
                    ("change_pct", pa.float64()),
                ]
            ),
        ),
    }
    if grouped_old is not None and grouped_new is not None:
        go = dict(
            zip(
                grouped_old["case_id"].to_pylist(),
                grouped_old["group_code"].to_pylist(),
                strict=True,
            )
        )
        gn = dict(
            zip(
                grouped_new["case_id"].to_pylist(),
                grouped_new["group_code"].to_pylist(),
                strict=True,
            )
        )
        flows: dict[tuple[str | None, str | None], int] = {}
        for cid, g_old in go.items():
            g_new = gn.get(cid)
            if g_old != g_new:
                flows[(g_old, g_new)] = flows.get((g_old, g_new), 0) + 1
        targets: dict[str | None, set] = {}
        sources: dict[str | None, set] = {}
        for (a, b), _ in flows.items():
            targets.setdefault(a, set()).add(b)
            sources.setdefault(b, set()).add(a)
        rows = []
        for (a, b), count in sorted(flows.items(), key=lambda kv: -kv[1]):
            kind = "拆分" if len(targets[a]) > 1 else "合并" if len(sources[b]) > 1 else "迁移"
            rows.append({"old_group": a, "new_group": b, "cases": count, "kind": kind})
        out["case_moves"] = pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [
                    ("old_group", pa.string()),
                    ("new_group", pa.string()),
                    ("cases", pa.int64()),
                    ("kind", pa.string()),
                ]
            ),
        )
    return out
