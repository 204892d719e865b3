"""Readers, validation and quarantine for settlement lists and hospital tables.

`read_cases(paths)` / `read_hospitals(paths)` return an `ImportResult` (accepted rows in the
contract, quarantined rows with reasons, one row per error, per-file counts);
`write_outputs(result, dir)` writes the Parquet, quarantine.csv and errors.csv files. The CLI
(`opendip import`) and the web upload both call these.
"""

from opendip.ingest.importer import (
    FileReport,
    ImportResult,
    InvariantError,
    import_table,
    read_cases,
    read_hospitals,
    write_outputs,
)
from opendip.ingest.readers import RawFile, ReadError, read_file
from opendip.ingest.validate import ERROR_SCHEMA, RULES, MissingColumnsError

__all__ = [
    "ERROR_SCHEMA",
    "RULES",
    "FileReport",
    "ImportResult",
    "InvariantError",
    "MissingColumnsError",
    "RawFile",
    "ReadError",
    "import_table",
    "read_cases",
    "read_file",
    "read_hospitals",
    "write_outputs",
]
