"""The code-table columns grouping and directory building read, registered with a backend."""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.codes import CodeTables
from opendip.engine import table_from_arrow


def procedure_types(con: BaseBackend, codes: CodeTables) -> ir.Table:
    """code, procedure_type of the region's procedure table."""
    return table_from_arrow(
        con, codes.procedures.select(["code", "procedure_type"]), "procedure_types"
    )


def diagnosis_codes(con: BaseBackend, codes: CodeTables) -> ir.Table:
    """code, valid_as_main of the region's diagnosis table."""
    return table_from_arrow(
        con, codes.diagnoses.select(["code", "valid_as_main"]), "diagnosis_codes"
    )
