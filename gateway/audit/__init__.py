"""The audit trail: an append-only, hash-chained log of every decision, in SQLite.

``record`` (AuditRecord, AuditUnavailable), ``chain`` (what is hashed, verification: pure),
``reader`` (read-only query, export, verify), ``writer`` (AuditLog: the group-commit writer thread).
The names below are the package's public face: import them from ``gateway.audit``.
"""

from gateway.audit.chain import (
    CHAIN_SCHEME,
    CHAIN_SCHEME_V1,
    COLUMNS,
    GENESIS,
    STORED_COLUMNS,
    WRITTEN_AT,
    Link,
    RecordCheck,
    RowEncoder,
    Verification,
    chain_hash,
    check_record,
    hashed,
    record_row,
    row_hash,
    verify_rows,
)
from gateway.audit.reader import AuditError, AuditReader, iso_time, row_dict
from gateway.audit.record import AuditRecord, AuditUnavailable, Source
from gateway.audit.writer import AuditLog, AuditMetrics, open_writer, purge_chunk

__all__ = [
    "CHAIN_SCHEME",
    "CHAIN_SCHEME_V1",
    "COLUMNS",
    "GENESIS",
    "STORED_COLUMNS",
    "WRITTEN_AT",
    "AuditError",
    "AuditLog",
    "AuditMetrics",
    "AuditReader",
    "AuditRecord",
    "AuditUnavailable",
    "Link",
    "RecordCheck",
    "RowEncoder",
    "Source",
    "Verification",
    "chain_hash",
    "check_record",
    "hashed",
    "iso_time",
    "open_writer",
    "purge_chunk",
    "record_row",
    "row_dict",
    "row_hash",
    "verify_rows",
]
