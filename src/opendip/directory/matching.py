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

    `keyed`: row_key, dx_key, procedures, n_procedures, surgical, main_procedure and, when
    present, total_cost (see `opendip.directory.keys.with_keys`).
    """
    rows = core_rows(directory)
    wanted = (row_key, "dx_key", "procedures", "surgical", "total_cost", "main_procedure")
    cases = keyed.select(*[c for c in wanted if c in keyed.columns], "n_procedures")
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


def tie_fields(
    c: ir.Table, rules: list[tuple[int, str]], cost: ir.IntegerValue | None
) -> dict[str, ir.Value]:
    """The `tie_key` fields k<i> of `rules` ((position in the chain, rule)) for candidate rows
    `c` (smaller wins; descending rules negated). `cost`: the case's total cost (for
    closest_mean_cost)."""
    fields: dict[str, ir.Value] = {}
    for i, rule in rules:
        name = f"k{i}"
        if rule == "most_procedures_matched":
            fields[name] = -c.matched.cast("int64")
        elif rule == "closest_mean_cost":
            assert cost is not None
            fields[name] = (c.mean_cost_fen - cost).abs().cast("int64")
        elif rule == "highest_score":
            fields[name] = -c.score
        elif rule == "main_procedure_first":
            fields[name] = (~c.has_main).cast("int8")
        elif rule == "exact_match_first":
            fields[name] = (~c.exact).cast("int8")
    return fields


def _numbered(rules: list[str]) -> list[tuple[int, str]]:
    return list(enumerate(rules, start=1))


def tie_key_expr(c: ir.Table, policy: Policy) -> ir.StructValue:
    """`tie_key` in Ibis: a struct ordered like the Python tuple (smaller wins; descending
    rules negated), so the winner is one `arg_min` per case — no window, no sort."""
    fields: dict[str, ir.Value] = {"k0": c.conservative.cast("int8")}
    fields |= tie_fields(c, _numbered(policy.grouping.tie_break), c.total_cost)
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


# -- Ibis, per profile (batch grouping) -----------------------------------------------------
# A profile is what a case's core match depends on apart from its cost: diagnosis key and
# procedures. Candidates and every tie-break that does not read the cost are decided once per
# profile; `closest_mean_cost` (and the rules after it) is decided per case, among the few
# candidates still tied when it applies.


def _split_rules(policy: Policy) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(rules before closest_mean_cost, rules after it), numbered as in `tie_key_expr`; all
    rules come first when closest_mean_cost is absent."""
    rules = _numbered(policy.grouping.tie_break)
    names = [r for _, r in rules]
    if "closest_mean_cost" not in names:
        return rules, []
    i = names.index("closest_mean_cost")
    return rules[:i], rules[i + 1 :]


def core_choices(
    profiles: ir.Table, directory: ir.Table, policy: Policy, key: str = "_pid"
) -> ir.Table:
    """key, _cands: per profile (rows of `keyed` without total_cost, one per `key`), the
    core/basic rows still in the running once every tie-break before closest_mean_cost has
    been applied, as an array of structs (d, later tie-break fields, group_code, group_type,
    score, mean_cost_fen) for `pick_core`. Without closest_mean_cost exactly one row is left.
    Profiles matching no row are absent."""
    before, after = _split_rules(policy)
    cand = core_candidates(profiles, directory, policy, key)
    pre = {"k0": cand.conservative.cast("int8")} | tie_fields(cand, before, None)
    cand = cand.mutate(_pre=ibis.struct(pre))
    if "closest_mean_cost" not in policy.grouping.tie_break:
        # The whole chain is known per profile: one winner (codes are unique).
        cand = cand.mutate(_pre=ibis.struct(pre | {"code": cand.group_code}))
    lowest = cand.group_by(key).aggregate(_min=cand._pre.argmin(cand._pre))
    cand = cand.join(lowest, key)
    cand = cand.filter(cand._pre == cand._min)
    element = {"d": ibis.literal(0, type="int64")} | tie_fields(cand, after, None)
    element |= {
        "group_code": cand.group_code,
        "group_type": cand.group_type,
        "score": cand.score,
        "mean_cost_fen": cand.mean_cost_fen.cast("int64"),
    }
    return cand.group_by(key).aggregate(_cands=ibis.struct(element).collect())


def pick_core(cands: ir.ArrayValue, cost: ir.IntegerValue, policy: Policy) -> ir.StructValue:
    """The winning element of a profile's `_cands` (see `core_choices`) for a case of total
    cost `cost`: closest mean cost, then the later tie-breaks, then the group code."""
    one = cands[0]
    if "closest_mean_cost" not in policy.grouping.tie_break:
        return one
    _, after = _split_rules(policy)

    def keyed(r: ir.StructValue) -> ir.StructValue:
        fields = {"d": (r["mean_cost_fen"] - cost).abs().cast("int64")}
        for name in [f"k{i}" for i, _ in after]:
            fields[name] = r[name]
        for name in ("group_code", "group_type", "score", "mean_cost_fen"):
            fields[name] = r[name]
        return ibis.struct(fields)

    return ibis.ifelse(cands.length() == 1, one, cands.map(keyed).sort()[0])
