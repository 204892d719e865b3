"""Directory files: load an official directory, export for publication, diff two versions."""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.codes import CodeTables, category_table, diagnosis_subcategory
from opendip.contract import DIRECTORY, GROUP_TYPES, HOSPITAL_LEVEL_LABELS, HOSPITAL_LEVELS
from opendip.contract.cells import EXCEL_OPTIONS
from opendip.contract.tables import DIRECTORY_KIND_LABELS, DIRECTORY_ORIGIN_LABELS
from opendip.money import fen_to_yuan, yuan_to_fen

TYPE_LABELS = {
    "core": "核心病种",
    "comprehensive": "综合病种",
    "basic": "基层病种",
    "special": "特殊病种",
}
#: Procedure types of comprehensive groups as published (相关手术 …) and as stored.
PROCEDURE_TYPE_LABELS = {
    "conservative": "保守治疗",
    "diagnostic": "诊断性操作",
    "therapeutic": "治疗性操作",
    "surgery": "相关手术",
}
MATCH_LABELS = {
    "none": "保守",
    "all": "全部",
    "any": "任一",
    "prefix": "前缀",
    "type": "操作类别",
}
CONSERVATIVE_TEXT = ("", "保守", "保守治疗")
LEVEL_HEADERS = {f"次均费用-{HOSPITAL_LEVEL_LABELS[lv]}(元)": lv for lv in HOSPITAL_LEVELS}
OFFICIAL_HEADERS = {
    "病种编码": "group_code",
    "病种名称": "group_name",
    "病种类型": "group_type",
    "主要诊断编码": "diagnosis_key",
    "诊断编码": "diagnosis_key",
    "诊断键": "diagnosis_key",
    "手术操作编码": "procedure_key",
    "手术操作": "procedure_key",
    "操作匹配方式": "procedure_match",
    "病种分值": "score",
    "分值": "score",
    "次均费用": "mean_cost_yuan",
    "次均费用(元)": "mean_cost_yuan",
    "病例数": "case_count",
    "变异系数": "cv",
    "床日分值": "score_per_day",
    "病种来源": "origin",
    "新增单位": "added_by",
    "新增日期": "added_on",
    "新增依据": "added_basis",
    **{h: f"mean_cost_{lv}_yuan" for h, lv in LEVEL_HEADERS.items()},
}
#: 病种类型 written as 新增病种 in a region's file: a core group with origin local.
NEW_TYPE_LABEL = DIRECTORY_KIND_LABELS["new"]
PROVENANCE_HEADERS = ["病种来源", "新增单位", "新增日期", "新增依据"]
#: The export's columns, in order: the loader reads every one of them back.
EXPORT_HEADERS = [
    "病种编码", "病种名称", "病种类型", "诊断键", "手术操作", "操作匹配方式", "病种分值",
    "次均费用(元)", *LEVEL_HEADERS, "病例数", "变异系数", "床日分值", *PROVENANCE_HEADERS,
]  # fmt: skip


def directory_kinds(directory: pa.Table) -> dict[str, int]:
    """Groups by the kind the regions report (核心/综合/基层/特殊/新增): a group with origin
    local (新增病种) counts as new whatever its type; every kind listed, zeros included."""
    types = directory["group_type"].to_pylist()
    origins = (
        directory["origin"].to_pylist()
        if "origin" in directory.column_names
        else [None] * directory.num_rows
    )
    out = dict.fromkeys(DIRECTORY_KIND_LABELS, 0)
    for t, o in zip(types, origins, strict=True):
        out["new" if o == "local" else t] = out.get("new" if o == "local" else t, 0) + 1
    return out


def _provenance(r: dict[str, str], local: bool, code: str, problems: list[str]) -> dict[str, Any]:
    """origin, added_by, added_on, added_basis of a row (新增病种 need a date and a basis)."""
    origin_text = r.get("origin", "")
    by_label = {v: k for k, v in DIRECTORY_ORIGIN_LABELS.items()}
    # blank = not said (a national group, kept null so a directory round-trips unchanged)
    origin = by_label.get(origin_text, origin_text) or ("local" if local else None)
    if local and origin != "local":
        problems.append(f"病种 {code} 病种类型为新增病种，但病种来源为 {origin_text!r}")
    if origin is not None and origin not in DIRECTORY_ORIGIN_LABELS:
        problems.append(f"病种 {code} 病种来源 {origin_text!r} 无效（国家目录、新增病种）")
        return {}
    added_on = None
    text = r.get("added_on", "")
    if text:
        try:
            added_on = dt.date.fromisoformat(text[:10])
        except ValueError:
            problems.append(f"病种 {code} 新增日期无效（{text!r}，应为 YYYY-MM-DD）")
    out = {
        "origin": origin,
        "added_by": r.get("added_by") or None,
        "added_on": added_on,
        "added_basis": r.get("added_basis") or None,
    }
    if origin == "local":
        if not text:
            problems.append(f"新增病种 {code} 缺少新增日期")
        if not out["added_basis"]:
            problems.append(f"新增病种 {code} 缺少新增依据（决定文件）")
    elif out["added_by"] or text or out["added_basis"]:
        problems.append(f"病种 {code} 为国家目录病种，不应填写新增单位、日期或依据")
    return out


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


class _Codes:
    """The code tables a directory file is checked against."""

    def __init__(self, codes: CodeTables) -> None:
        self.dx = set(codes.diagnoses["subcategory"].to_pylist()) | set(
            codes.diagnoses["category"].to_pylist()
        )
        self.dx_full = sorted(codes.diagnoses["code"].to_pylist())
        cats = category_table()
        self.blocks = set(cats["block"].to_pylist())
        self.chapters = set(cats["chapter"].to_pylist())
        self.proc = set(codes.procedures["code"].to_pylist())
        self.proc_sorted = sorted(self.proc)

    @staticmethod
    def _has_prefix(sorted_codes: list[str], prefix: str) -> bool:
        i = bisect.bisect_left(sorted_codes, prefix)
        return i < len(sorted_codes) and sorted_codes[i].startswith(prefix)

    def proc_prefix(self, p: str) -> bool:
        return self._has_prefix(self.proc_sorted, p)

    def dx_prefix(self, p: str) -> bool:
        return self._has_prefix(self.dx_full, p)


def load_official_directory(path: str | Path, codes: CodeTables) -> pa.Table:
    """Read a directory file (CSV UTF-8/GBK or .xlsx, Chinese headers): a region's published
    directory, or what `export_excel` wrote (every group type, read back identically).

    Procedure conditions of core and basic groups: 'A+B' all of, 'A/B' any of, a code
    shorter than a full code (not in the procedure table, but codes start with it) means
    "this code and everything under it" (also written 'A*'), empty or 保守治疗 =
    conservative. Comprehensive groups: diagnosis key = category, block ('K35-K38') or
    chapter ('XI'), procedure = 相关手术/治疗性操作/诊断性操作/保守治疗. Special groups:
    diagnosis and procedure prefixes separated by '|'. Every problem is collected; the
    error lists them all with their row numbers (the header is row 1).
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
    known = _Codes(codes)
    type_by_label = {v: k for k, v in TYPE_LABELS.items()}
    for i, values in enumerate(raw.to_pylist(), start=2):
        r = {
            mapping[h]: ("" if v is None else str(v)).strip()
            for h, v in values.items()
            if h in mapping
        }
        code = r.get("group_code", "")
        where = f"第 {i} 行"
        if not code:
            problems.append(f"{where}：病种编码为空")
            continue
        if code in seen:
            problems.append(f"{where}：病种编码 {code} 与第 {seen[code]} 行重复")
            continue
        seen[code] = i
        local = r.get("group_type", "") in (NEW_TYPE_LABEL, "new")
        group_type = (
            "core"
            if local
            else type_by_label.get(r.get("group_type", ""), r.get("group_type") or "core")
        )
        if group_type not in GROUP_TYPES:
            problems.append(f"{where}：病种类型 {r.get('group_type')!r} 无效")
            continue
        score = _decimal(r.get("score", ""), positive=True)
        if score is None:
            problems.append(f"{where}：病种 {code} 病种分值缺失或无效（{r.get('score')!r}）")
            continue
        row_problems: list[str] = []
        dx, pk, match = _keys(r, group_type, known, row_problems)
        problems.extend(f"{where}：病种 {code} 的{p}" for p in row_problems)
        money: dict[str, int | None] = {}
        bad_money = False
        for key in ("mean_cost_yuan", *[f"mean_cost_{lv}_yuan" for lv in HOSPITAL_LEVELS]):
            text = r.get(key, "")
            try:
                money[key.replace("_yuan", "_fen")] = yuan_to_fen(text) if text else None
            except (ValueError, ArithmeticError):
                problems.append(f"{where}：病种 {code} 次均费用无效（{text!r}）")
                bad_money = True
        if bad_money:
            continue
        if r.get("case_count") and not r["case_count"].isdigit():
            problems.append(f"{where}：病种 {code} 病例数无效（{r['case_count']!r}）")
            continue
        cv = r.get("cv", "")
        try:
            cv_value = float(cv) if cv else None
        except ValueError:
            problems.append(f"{where}：病种 {code} 变异系数无效（{cv!r}）")
            continue
        per_day = r.get("score_per_day", "")
        per_day_value = _decimal(per_day, positive=True) if per_day else None
        if per_day and per_day_value is None:
            problems.append(f"{where}：病种 {code} 床日分值无效（{per_day!r}）")
            continue
        prov_problems: list[str] = []
        provenance = _provenance(r, local, code, prov_problems)
        if prov_problems:
            problems.extend(f"{where}：{p}" for p in prov_problems)
            continue
        rows.append(
            {
                "group_code": code,
                "group_name": r.get("group_name") or code,
                "group_type": group_type,
                "diagnosis_key": dx,
                "procedure_key": pk,
                "procedure_match": match,
                "score": score,
                "mean_cost_fen": money.get("mean_cost_fen") or 0,
                **{
                    f"mean_cost_{lv}_fen": money.get(f"mean_cost_{lv}_fen")
                    for lv in HOSPITAL_LEVELS
                },
                "case_count": int(r["case_count"]) if r.get("case_count") else None,
                "cv": cv_value,
                "score_per_day": per_day_value,
                **provenance,
            }
        )
    if problems:
        raise DirectoryFileError(str(path), problems)
    return DIRECTORY.conform(pa.Table.from_pylist(rows))


def _decimal(text: str, positive: bool = False) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or (positive and value <= 0):
        return None
    return value


def _keys(
    r: dict[str, str], group_type: str, known: _Codes, problems: list[str]
) -> tuple[str, str, str]:
    """(diagnosis_key, procedure_key, procedure_match) of a row; problems appended."""
    dx = r.get("diagnosis_key", "")
    key = r.get("procedure_key", "").replace(" ", "")
    declared = {v: k for k, v in MATCH_LABELS.items()}.get(
        r.get("procedure_match", ""), r.get("procedure_match") or None
    )
    if group_type == "comprehensive":
        if dx not in known.dx and dx not in known.blocks and dx not in known.chapters:
            problems.append(f"诊断键 {dx} 不是代码表中的类目、节或章")
        ptype = {v: k for k, v in PROCEDURE_TYPE_LABELS.items()}.get(key, key)
        if ptype not in PROCEDURE_TYPE_LABELS:
            problems.append(
                f"手术操作 {key!r} 不是操作类别（{'、'.join(PROCEDURE_TYPE_LABELS.values())}）"
            )
        return dx, ptype, "type"
    if group_type == "special":
        for p in [d for d in dx.split("|") if d]:
            if not known.dx_prefix(p):
                problems.append(f"诊断编码前缀 {p} 在医保版代码表中没有对应编码")
        for p in [c for c in key.split("|") if c]:
            if not known.proc_prefix(p):
                problems.append(f"手术操作编码前缀 {p} 在医保版代码表中没有对应编码")
        return dx, key, "prefix"
    if diagnosis_subcategory(dx) not in known.dx and dx not in known.dx:
        problems.append(f"诊断编码 {dx} 不在医保版代码表中")
    dx = diagnosis_subcategory(dx) if len(dx) > 5 else dx
    if key in CONSERVATIVE_TEXT:
        return dx, "", "none"
    match, procs, problem = _procedure_condition(key, known)
    if declared in ("all", "any", "prefix") and declared != match and not problem:
        # A one-code 'any of' row is written like an 'all of' one: the column decides.
        if len(procs) == 1 and {declared, match} <= {"all", "any"}:
            match = declared
        else:
            problem = f"与操作匹配方式 {r.get('procedure_match')!r} 不符"
    if problem:
        problems.append(f"手术操作编码 {key!r} {problem}")
    for p in procs:
        ok = known.proc_prefix(p) if match == "prefix" else p in known.proc
        if not ok:
            problems.append(f"手术操作编码 {p} 不在医保版代码表中")
    return dx, ("+" if match == "all" else "/").join(sorted(procs)), match


def export_excel(
    directory: pa.Table, path: str | Path, metrics: dict[str, Any] | None = None
) -> Path:
    """The directory as a publication workbook (病种目录 + 目录指标). `opendip directory load`
    reads the 病种目录 sheet back into the same directory."""
    import xlsxwriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet = book.add_worksheet("病种目录")
    for c, h in enumerate(EXPORT_HEADERS):
        sheet.write(0, c, h, head)
    col = {h: i for i, h in enumerate(EXPORT_HEADERS)}
    for r, row in enumerate(directory.to_pylist(), start=1):
        gtype, pk = row["group_type"], row["procedure_key"] or ""
        if gtype == "comprehensive":
            pk = PROCEDURE_TYPE_LABELS.get(pk, pk)
        elif gtype in ("core", "basic") and not pk:
            pk = PROCEDURE_TYPE_LABELS["conservative"]
        texts = {
            "病种编码": row["group_code"],
            "病种名称": row["group_name"],
            "病种类型": TYPE_LABELS.get(gtype, gtype),
            "诊断键": row["diagnosis_key"],
            "手术操作": pk,
            "操作匹配方式": MATCH_LABELS.get(row["procedure_match"], row["procedure_match"]),
        }
        for h, v in texts.items():
            sheet.write_string(r, col[h], v or "")
        sheet.write_number(r, col["病种分值"], float(row["score"]))
        means = {"次均费用(元)": "mean_cost_fen"} | {
            h: f"mean_cost_{lv}_fen" for h, lv in LEVEL_HEADERS.items()
        }
        for h, key in means.items():
            if row.get(key) is not None:
                sheet.write_number(r, col[h], float(fen_to_yuan(row[key])), money)
        if row.get("case_count") is not None:
            sheet.write_number(r, col["病例数"], row["case_count"])
        if row.get("cv") is not None:
            sheet.write_number(r, col["变异系数"], row["cv"])
        if row.get("score_per_day") is not None:
            sheet.write_number(r, col["床日分值"], float(row["score_per_day"]))
        if row.get("origin"):
            origin = row["origin"]
            sheet.write_string(r, col["病种来源"], DIRECTORY_ORIGIN_LABELS.get(origin, origin))
        if row.get("added_by"):
            sheet.write_string(r, col["新增单位"], row["added_by"])
        if row.get("added_on"):
            sheet.write_string(r, col["新增日期"], row["added_on"].isoformat())
        if row.get("added_basis"):
            sheet.write_string(r, col["新增依据"], row["added_basis"])
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, 1, 28)
    kinds = book.add_worksheet("目录构成")
    kinds.write(0, 0, "病种类别", head)
    kinds.write(0, 1, "病种数", head)
    counts = directory_kinds(directory)
    for r, (kind, n) in enumerate(counts.items(), start=1):
        kinds.write_string(r, 0, DIRECTORY_KIND_LABELS[kind])
        kinds.write_number(r, 1, n)
    kinds.write_string(len(counts) + 1, 0, "合计")
    kinds.write_number(len(counts) + 1, 1, directory.num_rows)
    kinds.set_column(0, 0, 16)
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
        out["case_moves"] = _case_moves(grouped_old, grouped_new)
        per_group = grouped_new.group_by("group_code").aggregate([("case_id", "count")])
        counts = dict(
            zip(
                per_group["group_code"].to_pylist(),
                per_group["case_id_count"].to_pylist(),
                strict=True,
            )
        )
        sc = out["score_changes"]
        out["score_changes"] = sc.append_column(
            "cases_affected",
            pa.array([counts.get(g, 0) for g in sc["group_code"].to_pylist()], pa.int64()),
        )
    return out


def _case_moves(grouped_old: pa.Table, grouped_new: pa.Table) -> pa.Table:
    """Flows of cases between groups (old → new) with their kind.

    拆分 (split): the old group's cases now fall in several groups; 合并 (merge): the new
    group's cases came from several groups; 拆分合并 both; 迁移 a plain move. Cases without a
    group count as group '' (未入组).
    """
    a = grouped_old.select(["case_id", "group_code"]).rename_columns(["case_id", "old_group"])
    b = grouped_new.select(["case_id", "group_code"]).rename_columns(["case_id", "new_group"])
    j = a.join(b, "case_id", join_type="full outer")
    j = pa.table(
        {
            "old_group": pc.fill_null(j["old_group"], ""),
            "new_group": pc.fill_null(j["new_group"], ""),
            "case_id": j["case_id"],
        }
    )
    flows = j.group_by(["old_group", "new_group"]).aggregate([("case_id", "count")])
    targets = flows.group_by("old_group").aggregate([("new_group", "count")])
    sources = flows.group_by("new_group").aggregate([("old_group", "count")])
    flows = flows.join(targets, "old_group").join(sources, "new_group")
    moved = flows.filter(pc.not_equal(flows["old_group"], flows["new_group"]))
    split = pc.greater(moved["new_group_count"], 1)
    merge = pc.greater(moved["old_group_count"], 1)
    kind = pc.if_else(
        pc.and_(split, merge),
        "拆分合并",
        pc.if_else(split, "拆分", pc.if_else(merge, "合并", "迁移")),
    )
    return pa.table(
        {
            "old_group": moved["old_group"],
            "new_group": moved["new_group"],
            "cases": pc.cast(moved["case_id_count"], pa.int64()),
            "kind": kind,
        }
    ).sort_by([("cases", "descending"), ("old_group", "ascending"), ("new_group", "ascending")])


DIFF_SHEETS = {
    "added": (
        "新增病种",
        {"group_code": "病种编码", "group_name": "病种名称", "score": "病种分值"},
    ),
    "removed": (
        "删除病种",
        {"group_code": "病种编码", "group_name": "病种名称", "score": "病种分值"},
    ),
    "score_changes": (
        "分值变化",
        {
            "group_code": "病种编码",
            "old_score": "原分值",
            "new_score": "新分值",
            "change_pct": "变化(%)",
            "cases_affected": "涉及病例数",
        },
    ),
    "case_moves": (
        "病例迁移",
        {"old_group": "原病种", "new_group": "新病种", "cases": "病例数", "kind": "类型"},
    ),
}


def export_diff_excel(diff: dict[str, pa.Table], path: str | Path) -> Path:
    """The directory diff as a workbook, one sheet per table, Chinese headers."""
    import xlsxwriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), EXCEL_OPTIONS)
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    summary = book.add_worksheet("概要")
    for r, (key, (label, _)) in enumerate(DIFF_SHEETS.items()):
        if key in diff:
            summary.write(r, 0, label)
            summary.write(r, 1, diff[key].num_rows)
    for key, (label, headers) in DIFF_SHEETS.items():
        if key not in diff:
            continue
        sheet = book.add_worksheet(label)
        cols = [c for c in headers if c in diff[key].column_names]
        for c, name in enumerate(cols):
            sheet.write(0, c, headers[name], head)
        for r, row in enumerate(diff[key].select(cols).to_pylist(), start=1):
            for c, name in enumerate(cols):
                v = row[name]
                if isinstance(v, Decimal):
                    sheet.write_number(r, c, float(v))
                elif v is not None:
                    sheet.write(r, c, v if v != "" else "（未入组）")
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, len(cols), 22)
    book.close()
    return path


def _procedure_condition(
    key: str, known: _Codes | None = None
) -> tuple[str, list[str], str | None]:
    """(procedure_match, codes or prefixes, problem) of an official procedure condition.

    A code ending in '*', or (with `known`) a code missing from the procedure table that
    table codes start with, is a prefix: "this code and everything under it"."""
    if not key:
        return "none", [], None
    if "+" in key and "/" in key:
        return "all", [], "不能同时使用 +（全部）与 /（任一）"
    parts = [p for p in key.replace("/", "+").split("+")]
    if any(not p for p in parts):
        return "all", [], "含空的编码"
    starred = [
        p.endswith("*") or (known is not None and p not in known.proc and known.proc_prefix(p))
        for p in parts
    ]
    if any(starred):
        if not all(starred) or "+" in key:
            return "prefix", [], "前缀条件（短编码或 *）须全部为前缀并以 / 分隔"
        return "prefix", sorted({p.rstrip("*") for p in parts}), None
    return ("any" if "/" in key else "all"), sorted(set(parts)), None
