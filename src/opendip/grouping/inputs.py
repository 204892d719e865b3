"""The code-table columns grouping and directory building read, registered with a backend."""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.codes import CodeTables
from opendip.engine import table_from_arrow

#: Attribute of a connection holding, per table name, the code tables last registered and
#: their Ibis table. Registering copies the table into the engine (~0.1 s for the demo tables
#: on DuckDB); a process grouping several batches on one connection registers them once.
#: (On the connection object itself: backends compare equal by database, and every
#: in-memory DuckDB is the same database to Ibis.)
_ATTR = "_opendip_code_tables"


def _register(con: BaseBackend, codes: CodeTables, name: str, build) -> ir.Table:
    per_con: dict[str, tuple[CodeTables, ir.Table]] | None = getattr(con, _ATTR, None)
    if per_con is None:
        per_con = {}
        setattr(con, _ATTR, per_con)
    hit = per_con.get(name)
    if hit is not None and hit[0] is codes:
        return hit[1]
    # The same name with other code tables replaces the registered table (as before).
    table = table_from_arrow(con, build(codes), name)
    per_con[name] = (codes, table)
    return table


def procedure_types(con: BaseBackend, codes: CodeTables) -> ir.Table:
    """code, procedure_type of the region's procedure table."""
    return _register(
        con, codes, "procedure_types", lambda c: c.procedures.select(["code", "procedure_type"])
    )


def diagnosis_codes(con: BaseBackend, codes: CodeTables) -> ir.Table:
    """code, valid_as_main of the region's diagnosis table."""
    return _register(
        con, codes, "diagnosis_codes", lambda c: c.diagnoses.select(["code", "valid_as_main"])
    )
