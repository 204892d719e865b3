"""Batch grouping compiled once per policy and input schema, then reused (issue 16 §3).

Building the grouping expression with Ibis and compiling it to SQL costs about a third of a
second of single-threaded Python per call, whatever the number of cases: at 1 M cases, a
fifth of the whole grouping. The SQL depends only on the engine, the policy, the auxiliary
directory and the *schemas* of the inputs — never on their rows (a directory file with new
rows and the same columns is read afresh by the same SQL). So `group_cases` compiles the
rule steps (`grouping`) once against placeholder tables, keeps the SQL text in `COMPILED`,
and binds each call's inputs by name:

1. each input is referred to by its table or view name (an input that is an expression
   rather than a table becomes a view first);
2. the per-profile tables (`profiles`, `lists`: a few thousand rows each) are created from
   their SQL and checked for hash collisions (`batch.hash_is_unique`);
3. the per-case query becomes a view over them; `group_cases` returns that view as a table.

The cache key holds everything the SQL depends on: engine, policy and auxiliary directory
(their full content), `carry`, each input's schema, and which per-profile tables had a
collision (a collision selects the exact-join variant of the per-case query).
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.codes import category_table
from opendip.directory.auxiliary import AuxiliaryDirectory
from opendip.grouping import batch
from opendip.policy import Policy

CATEGORY_SCHEMA = ibis.schema({"category": "string", "block": "string", "chapter": "string"})
#: Distinct keys kept (policies × input schemas × engines); the oldest goes first.
MAX_TEMPLATES = 32
_TOKEN = secrets.token_hex(4)
_names = itertools.count(1)
_lock = threading.Lock()


@dataclass(frozen=True)
class Template:
    """Compiled SQL of the grouping steps: per-profile tables (name, SQL, hash column,
    schema) in
    order, then the per-case query; inputs appear as `placeholder(role)`."""

    stages: tuple[tuple[str, str, str, Any], ...]
    main: str
    main_schema: Any


#: Compiled templates by key (see the module text); `COMPILED.clear()` forgets them.
COMPILED: OrderedDict[tuple, Template] = OrderedDict()
#: How many templates were compiled in this process (tests read it).
compiles = 0


def placeholder(role: str) -> str:
    return f"opendip_ph_{role}_{_TOKEN}"


class _Placeholders(batch.Steps):
    """Steps while compiling: per-profile tables become placeholders, their collision check
    an assumption (`flags`) that the caller verifies on the real tables."""

    def __init__(self, spark: bool, flags: dict[str, bool]) -> None:
        super().__init__(spark)
        self.flags = flags
        self.stages: dict[str, tuple[ir.Table, str]] = {}

    def categories(self) -> ir.Table:
        return ibis.table(CATEGORY_SCHEMA, placeholder("cats"))

    def materialize(self, name: str, t: ir.Table) -> ir.Table:
        self.stages[name] = (t, "")
        return ibis.table(t.schema(), name=placeholder(name))

    def unique(self, name: str, t: ir.Table, key: str) -> bool:
        self.stages[name] = (self.stages[name][0], key)
        return self.flags[name]


def single_backend(tables: Iterable[ir.Table]) -> BaseBackend | None:
    """The one backend all `tables` are bound to, or None (unbound, in-memory only, or
    several backends: then grouping is built and run directly)."""
    found: BaseBackend | None = None
    for t in tables:
        try:
            con = t._find_backend()
        except Exception:  # Ibis raises several kinds when there is none
            return None
        if found is not None and con is not found:
            return None
        found = con
    if found is None or found.name not in ("duckdb", "pyspark"):
        return None
    return found


def _key(
    con: BaseBackend,
    inputs: dict[str, ir.Table],
    policy: Policy,
    auxiliary: AuxiliaryDirectory | None,
    carry: tuple[str, ...],
) -> tuple:
    return (
        con.name,
        policy.model_dump_json(),
        auxiliary.model_dump_json() if auxiliary is not None else None,
        carry,
        tuple((role, t.schema()) for role, t in sorted(inputs.items())),
    )


def template(
    con: BaseBackend,
    key: tuple,
    inputs: dict[str, ir.Table],
    policy: Policy,
    auxiliary: AuxiliaryDirectory | None,
    carry: tuple[str, ...],
    flags: dict[str, bool],
) -> Template:
    """The compiled template for `key` and collision `flags` (compiled on first use)."""
    global compiles
    full = (*key, tuple(sorted(flags.items())))
    with _lock:
        hit = COMPILED.get(full)
        if hit is not None:
            COMPILED.move_to_end(full)
            return hit
    held = {role: ibis.table(t.schema(), name=placeholder(role)) for role, t in inputs.items()}
    steps = _Placeholders(con.name == "pyspark", flags)
    main = batch.grouping(held, policy, auxiliary, carry, steps)
    made = Template(
        stages=tuple(
            (name, con.compile(t), k, t.schema()) for name, (t, k) in steps.stages.items()
        ),
        main=con.compile(main),
        main_schema=main.schema(),
    )
    with _lock:
        compiles += 1
        COMPILED[full] = made
        while len(COMPILED) > MAX_TEMPLATES:
            COMPILED.popitem(last=False)
    return made


def _fresh(kind: str) -> str:
    return f"opendip_{kind}_{next(_names)}_{_TOKEN}"


def _bind(con: BaseBackend, t: ir.Table) -> str:
    """A name the SQL can read `t` by: its own (a table or view of the connection's default
    namespace), else a new view of it."""
    op = t.op()
    if (
        isinstance(op, ops.DatabaseTable)
        and op.source is con
        and op.namespace.catalog is None
        and op.namespace.database is None
        and op.name.replace("_", "").isalnum()
    ):
        return op.name
    # Views made for inputs that were not plain tables, by input while it lives, per
    # connection (Ibis deems in-memory DuckDB connections equal, so their tables too).
    views = getattr(con, "_opendip_input_views", None)
    if views is None:
        views = weakref.WeakKeyDictionary()
        con._opendip_input_views = views  # type: ignore[attr-defined]
    name = views.get(op)
    if name is None:  # e.g. the code tables: the same objects call after call
        name = _fresh("input")
        con.create_view(name, t, overwrite=True)
        views[op] = name
    return name


def _categories(con: BaseBackend) -> str:
    """The ICD-10 category table, registered once per connection."""
    name = getattr(con, "_opendip_categories", None)
    if name is None:
        from opendip.engine import table_from_arrow

        name = f"opendip_icd10_categories_{_TOKEN}"
        table_from_arrow(con, category_table(), name)
        con._opendip_categories = name  # type: ignore[attr-defined]
    return name


def _create(con: BaseBackend, kind: str, sql: str, names: dict[str, str], schema: Any) -> ir.Table:
    """A view (or, `kind` "TABLE", a table: DuckDB only) of the template SQL `sql` with the
    inputs' names in place of the placeholders, as an Ibis table of the known `schema` (no
    schema lookup: that parses every column type again)."""
    for role, name in names.items():
        sql = sql.replace(placeholder(role), name)
    name = _fresh("grouping")
    con.raw_sql(f"CREATE OR REPLACE TEMPORARY {kind} {name} AS {sql}")
    return ops.DatabaseTable(name, schema=schema, source=con, namespace=ops.Namespace()).to_expr()


def _drop(con: BaseBackend, tables: list[str], views: list[str]) -> None:
    for kind, names in (("VIEW", views), ("TABLE", tables)):
        for name in names:
            # A closed connection has nothing left to drop.
            with contextlib.suppress(Exception):
                con.raw_sql(f"DROP {kind} IF EXISTS {name}")


#: Per-profile tables kept alive as long as the grouping that reads them (Spark).
_keep: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_grouping(
    con: BaseBackend,
    inputs: dict[str, ir.Table],
    policy: Policy,
    auxiliary: AuxiliaryDirectory | None,
    carry: tuple[str, ...],
) -> ir.Table:
    """`batch.grouping` through the compiled template (see the module text)."""
    key = _key(con, inputs, policy, auxiliary, carry)
    assumed = {"profiles": True, "lists": True}
    tpl = template(con, key, inputs, policy, auxiliary, carry, assumed)
    names = {role: _bind(con, t) for role, t in inputs.items()}
    names["cats"] = _categories(con)
    flags = dict(assumed)
    duck = con.name == "duckdb"
    kept: list[ir.Table] = []
    for stage, sql, hash_column, schema in tpl.stages:
        if duck:
            table = _create(con, "TABLE", sql, names, schema)
        else:  # Spark: a cached view
            table = _create(con, "VIEW", sql, names, schema).cache()
        kept.append(table)
        names[stage] = table.op().name
        flags[stage] = batch.hash_is_unique(table, hash_column)
    if flags != assumed:
        tpl = template(con, key, inputs, policy, auxiliary, carry, flags)
    result = _create(con, "VIEW", tpl.main, names, tpl.main_schema)
    if duck:
        # Dropped with the last expression that reads them.
        tables = [t.op().name for t in kept]
        weakref.finalize(result.op(), _drop, con, tables, [result.op().name])
    else:
        _keep[result.op()] = kept
    return result
