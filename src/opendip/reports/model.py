"""What a report is, independent of how it is rendered (Excel, HTML, PDF).

A report is built from a run's tables (`opendip.reports.build`) into this structure, then
rendered by `opendip.reports.render`. Every number a reader sees is a `Figure` with a stable
key, so tests can recompute each one independently from the run's tables and compare.

Money figures are integers in fen (unit "fen"); rates and shares are Decimals in [0, 1]
(unit "ratio", shown as percentages); counts are ints. Renderers format; builders never do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

#: How a value is shown: fen → 万元/元, ratio → %, cases/days/count → integers.
Unit = Literal["fen", "ratio", "count", "days", "score", "point_value", "text", "coefficient"]
ChartKind = Literal["line", "bar", "scatter", "histogram", "pie"]
Value = int | Decimal | str | None


@dataclass(frozen=True)
class Figure:
    """One named number of the report, e.g. key="fund.dip_minus_ffs", unit="fen"."""

    key: str
    label: str
    value: Value
    unit: Unit = "count"
    #: Optional comparison base (previous period / year) and the change, same unit.
    previous: Value = None
    note: str = ""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    label: str
    unit: Unit = "text"


@dataclass
class Table:
    """Rows are dicts keyed by ColumnSpec.name, values already exact (fen ints, Decimals)."""

    key: str
    title: str
    columns: list[ColumnSpec]
    rows: list[dict[str, Value]]
    note: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    #: (x, y) pairs; x may be a category label (bar/line) or a number (scatter).
    points: list[tuple[Any, Any]]


@dataclass
class Chart:
    key: str
    title: str
    kind: ChartKind
    series: list[Series]
    x_label: str = ""
    y_label: str = ""
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Report:
    #: "monthly" | "annual" | "hospital" | "publication"
    kind: str
    #: "2026-05" or "2026"
    period: str
    title: str
    region: str
    sections: list[Section]
    #: Where the numbers came from: run directory, manifest hash, policy version, code version.
    provenance: dict[str, str] = field(default_factory=dict)

    def figure(self, key: str) -> Figure:
        for section in self.sections:
            for f in section.figures:
                if f.key == key:
                    return f
        raise KeyError(key)

    def table(self, key: str) -> Table:
        for section in self.sections:
            for t in section.tables:
                if t.key == key:
                    return t
        raise KeyError(key)

    def chart(self, key: str) -> Chart:
        for section in self.sections:
            for c in section.charts:
                if c.key == key:
                    return c
        raise KeyError(key)

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, default=_json_default)

    def write_json(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
