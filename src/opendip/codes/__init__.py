"""Code tables (医保版 ICD-10 / ICD-9-CM-3): hierarchy, loading, mapping."""

from opendip.codes.hierarchy import (
    category_table,
    diagnosis_block,
    diagnosis_category,
    diagnosis_category_expr,
    diagnosis_chapter,
    diagnosis_subcategory,
    diagnosis_subcategory_expr,
    procedure_category,
    procedure_category_expr,
    procedure_chapter,
    procedure_subcategory,
    procedure_subcategory_expr,
)
from opendip.codes.normalise import normalise_code, normalise_code_expr
from opendip.codes.tables import (
    CodeTableError,
    CodeTables,
    apply_mapping,
    demo_code_tables,
    load_code_tables,
)

__all__ = [
    "CodeTableError",
    "CodeTables",
    "apply_mapping",
    "category_table",
    "demo_code_tables",
    "diagnosis_block",
    "diagnosis_category",
    "diagnosis_category_expr",
    "diagnosis_chapter",
    "diagnosis_subcategory",
    "diagnosis_subcategory_expr",
    "load_code_tables",
    "normalise_code",
    "normalise_code_expr",
    "procedure_category",
    "procedure_category_expr",
    "procedure_chapter",
    "procedure_subcategory",
    "procedure_subcategory_expr",
]
