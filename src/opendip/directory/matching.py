"""Which core rows a case matches, and which one wins: one rule for the directory build,
batch grouping (Ibis) and single-case grouping (Python). Reference §3, "Grouping a case".

A core (or basic) row's procedure condition holds when the case's counted procedures contain
what the row requires; procedures the row does not list never break the match:
- `all` ("A+B"): every listed code is among the case's procedures;
- `any` ("A/B"): at least one listed code is;
- `prefix` ("A*/B*"): at least one case code starts with a listed prefix;
- `none` (the conservative row, 保守): the case has no counted procedure. With
  `grouping.unlisted_surgery_to_comprehensive: false`, a case with a surgery that matches
  no procedure row also takes it (it is ranked after every procedure row, so it only wins
  when nothing else matched).

For each matching row: `matched` = how many of the case's procedures the row covers (listed,
or under a listed prefix); `has_main` = it covers the main procedure; `exact` = it covers all of them and every code it lists is used (the row is
exactly the case's procedures, no more, no less). The `grouping.tie_break` chain orders the matching rows, then the group code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy

#: Procedure conditions of core rows.
MATCHES = ("none", "all", "any", "prefix")


def row_codes(key: str | None) -> tuple[str, ...]:
    """The codes (or prefixes) of a directory row's procedure key: 'A+B', 'A/B' or ''."""
    return tuple(p for p in (key or "").replace("+", "/").split("/") if p)


def row_codes_expr(key: ir.StringValue) -> ir.ArrayValue:
    """`row_codes` in Ibis. '/' is split on, never '+': Spark reads the split pattern as a
    regular expression, where '+' is special and '/' is not."""
    return key.fill_null("").replace("+", "/").split("/").filter(lambda p: p != "")


# -- Python (single case) -------------------------------------------------------------------


@dataclass(frozen=True)
class CoreRow:
    group_code: str
    group_type: str
    procs: tuple[str, ...]
    match: str
    score: Decimal
    mean_cost_fen: int


@dataclass(frozen=True)
class Match:
    row: CoreRow
    matched: int
    exact: bool
    has_main: bool
    conservative: bool


def covers(row: CoreRow) -> Callable[[str], bool]:
    """Whether the row lists a case code (or a prefix of it)."""
    if row.match == "prefix":
        return lambda p: p.startswith(row.procs)
    codes = set(row.procs)
    return codes.__contains__


def match_row(
    row: CoreRow,
    procs: Iterable[str],
    surgical: Iterable[str],
    main_procedure: str | None,
    policy: Policy,
) -> Match | None:
    """The row's match for a case (its counted procedures), or None."""
    pset = set(procs)
    n = len(pset)
    if row.match == "none":
        ok = n == 0 or (
            not policy.grouping.unlisted_surgery_to_comprehensive and any(True for _ in surgical)
        )
        return Match(row, 0, n == 0, False, True) if ok else None
    listed = covers(row)
    matched = sum(1 for p in pset if listed(p))
    if row.match == "all":
        ok = bool(row.procs) and set(row.procs) <= pset
    elif row.match in ("any", "prefix"):
        ok = matched > 0
    else:
        ok = False
    if not ok:
        return None
    has_main = main_procedure is not None and listed(main_procedure)
    used = sum(
        1
        for r in row.procs
        if (any(p.startswith(r) for p in pset) if row.match == "prefix" else r in pset)
    )
    exact = matched == n and used == len(row.procs)
    return Match(row, matched, exact, has_main, False)


def tie_key(m: Match, cost: int, rules: list[str]) -> tuple:
    """Sort key of a matching row: smaller wins."""
    key: list[Any] = [m.conservative]
    for rule in rules:
        if rule == "most_procedures_matched":
            key.append(-m.matched)
        elif rule == "closest_mean_cost":
            key.append(abs(m.row.mean_cost_fen - cost))
        elif rule == "highest_score":
            key.append(-m.row.score)
        elif rule == "main_procedure_first":
            key.append(not m.has_main)
        elif rule == "exact_match_first":
            key.append(not m.exact)
    key.append(m.row.group_code)
    return tuple(key)


# -- Ibis (batch, directory build) ----------------------------------------------------------


def core_rows(directory: ir.Table) -> ir.Table:
    """The core and basic rows of a directory, with their codes as an array."""
    rows = directory.filter(directory.group_type.isin(["core", "basic"]))
    return rows.select(
        "group_code",
        "group_type",
        "score",
        "mean_cost_fen",
        "procedure_match",
        rkey=rows.diagnosis_key,
        rprocs=row_codes_expr(rows.procedure_key),
    )


def core_candidates(
    keyed: ir.Table, directory: ir.Table, policy: Policy, row_key: str = "_rid"
) -> ir.Table:
    """Every (case, core/basic row) pair that matches, with the columns tie-breaks use.

    `keyed`: row_key, dx_key, procedures, n_procedures, surgical, total_cost, main_procedure
    (see `opendip.directory.keys.with_keys`).
    """
    rows = core_rows(directory)
    cases = keyed.select(
        row_key, "dx_key", "procedures", "surgical", "total_cost", "main_procedure", "n_procedures"
    )
    c = cases.join(rows, cases.dx_key == rows.rkey)
    is_prefix = c.procedure_match == "prefix"

    def listed(code: ir.StringValue) -> ir.BooleanValue:
        by_prefix = c.rprocs.filter(lambda r: code.startswith(r)).length() > 0
        return ibis.ifelse(is_prefix, by_prefix, c.rprocs.contains(code))

    used_by_prefix = c.rprocs.filter(
        lambda r: c.procedures.filter(lambda p: p.startswith(r)).length() > 0
    ).length()
    c = c.mutate(
        matched=c.procedures.filter(lambda p: listed(p)).length(),
        # Listed codes the case has (all present: the 'all' condition).
        used=ibis.ifelse(is_prefix, used_by_prefix, c.rprocs.intersect(c.procedures).length()),
        has_main=c.main_procedure.notnull() & listed(c.main_procedure.fill_null("")),
    )
    surgery_to_conservative = not policy.grouping.unlisted_surgery_to_comprehensive
    none_ok = c.n_procedures == 0
    if surgery_to_conservative:
        none_ok |= c.surgical.length() > 0
    ok = ibis.cases(
        (c.procedure_match == "none", none_ok),
        (c.procedure_match == "all", (c.rprocs.length() > 0) & (c.used == c.rprocs.length())),
        (c.procedure_match.isin(["any", "prefix"]), c.matched > 0),
        else_=ibis.literal(False),
    )
    c = c.filter(ok)
    conservative = c.procedure_match == "none"
    return c.mutate(
        matched=ibis.ifelse(conservative, 0, c.matched),
        exact=ibis.ifelse(
            conservative,
            c.n_procedures == 0,
            (c.matched == c.n_procedures) & (c.used == c.rprocs.length()),
        ),
        has_main=ibis.ifelse(conservative, False, c.has_main),
        conservative=conservative,
    ).drop("used")


def tie_key_expr(c: ir.Table, policy: Policy) -> ir.StructValue:
    """`tie_key` in Ibis: a struct ordered like the Python tuple (smaller wins; descending
    rules negated), so the winner is one `arg_min` per case — no window, no sort."""
    fields: dict[str, ir.Value] = {"k0": c.conservative.cast("int8")}
    for i, rule in enumerate(policy.grouping.tie_break, start=1):
        if rule == "most_procedures_matched":
            fields[f"k{i}"] = -c.matched.cast("int64")
        elif rule == "closest_mean_cost":
            fields[f"k{i}"] = (c.mean_cost_fen - c.total_cost).abs().cast("int64")
        elif rule == "highest_score":
            fields[f"k{i}"] = -c.score
        elif rule == "main_procedure_first":
            fields[f"k{i}"] = (~c.has_main).cast("int8")
        elif rule == "exact_match_first":
            fields[f"k{i}"] = (~c.exact).cast("int8")
    fields["code"] = c.group_code  # deterministic final order
    return ibis.struct(fields)


def best_core(
    keyed: ir.Table, directory: ir.Table, policy: Policy, row_key: str = "_rid"
) -> ir.Table:
    """row_key, core_code, core_type, core_score: the winning core row of each case that
    matches one (cases matching none are absent)."""
    cand = core_candidates(keyed, directory, policy, row_key)
    cand = cand.mutate(_key=tie_key_expr(cand, policy))
    best = cand.group_by(row_key).aggregate(core_code=cand.group_code.argmin(cand._key))
    rows = directory.select(
        _code=directory.group_code, core_type=directory.group_type, core_score=directory.score
    )
    best = best.join(rows, best.core_code == rows._code)
    return best.select(row_key, "core_code", "core_type", "core_score")
