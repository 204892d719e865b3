"""Readers, validation and quarantine for settlement lists and hospital tables."""

from opendip.ingest.importer import (
    FileReport,
    ImportResult,
    import_table,
    read_cases,
    read_hospitals,
    write_outputs,
)
from opendip.ingest.readers import ReadError, read_file

__all__ = [
    "FileReport",
    "ImportResult",
    "ReadError",
    "import_table",
    "read_cases",
    "read_file",
    "read_hospitals",
    "write_outputs",
]
