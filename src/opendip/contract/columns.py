"""Column and table contracts: one place that says what every table holds.

A `TableContract` is the single source for a table's Arrow schema, its Chinese labels
(UI, reports, error messages) and the header aliases that readers accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One column of a contracted table."""

    name: str
    type: pa.DataType
    label: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    #: "fen" for money: int64 fen inside the system, yuan with 2 decimals at the edges.
    unit: str | None = None
    #: Allowed values for coded columns (canonical form), None when free.
    allowed: tuple[str, ...] | None = None
    description: str = ""

    @property
    def is_money(self) -> bool:
        return self.unit == "fen"

    @property
    def is_list(self) -> bool:
        return pa.types.is_list(self.type)


@dataclass(frozen=True)
class TableContract:
    """A named table: its columns in order."""

    name: str
    label: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = field(default=())

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in self.columns])

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def money_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.is_money]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def alias_map(self) -> dict[str, str]:
        """Header text (canonical name, Chinese label or alias, case-folded) → column name."""
        out: dict[str, str] = {}
        for c in self.columns:
            for text in (c.name, c.label, *c.aliases):
                out[normalise_header(text)] = c.name
        return out

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    def conform(self, table: pa.Table) -> pa.Table:
        """Reorder and cast `table` to this contract (missing optional columns become null).

        Raises `ValueError` naming the first required column that is missing.
        """
        arrays = []
        for c in self.columns:
            if c.name in table.column_names:
                arrays.append(table.column(c.name).cast(c.type))
            elif c.required:
                raise ValueError(f"表 {self.name} 缺少必填列 {c.name}（{c.label}）")
            else:
                arrays.append(pa.nulls(table.num_rows, c.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)


def normalise_header(text: str) -> str:
    """Fold a header for alias lookup: trim, drop spaces/underscores/BOM, lower-case."""
    return (
        text.replace("\ufeff", "")
        .strip()
        .replace(" ", "")
        .replace("\u3000", "")
        .replace("_", "")
        .replace("（", "(")
        .replace("）", ")")
        .lower()
    )
