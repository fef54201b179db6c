"""Export of the audit log as JSON Lines or CSV, one row at a time, in constant memory.

JSON Lines: one :class:`~tenantkit.audit.AuditEvent` per line, as ``model_dump(mode="json")`` writes it.
CSV: one row per event under a header, ``targets`` and ``data`` as JSON text, rows ended by CRLF (RFC 4180).
A spreadsheet would run a CSV cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as
a formula, and a user agent is whatever the client sent, so such a cell gets a leading ``'`` (the OWASP advice
for CSV injection). A cell holding a line break, CR or LF, is quoted, so it cannot end its row early and
start a cell of its own (which the leading ``'`` would not cover).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import Any, Literal, TextIO

from tenantkit._errors import InvalidInputError

__all__ = ["CSV_COLUMNS", "ExportFormat", "write_records"]

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "organization_id",
    "occurred_at",
    "type",
    "version",
    "actor_kind",
    "actor_id",
    "targets",
    "data",
    "ip_address",
    "user_agent",
    "request_id",
    "sequence",
    "redacted_at",
)
"""The header of a CSV export."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(record: dict[str, Any]) -> list[str]:
    flat = {
        **record,
        "actor_kind": record["actor"]["kind"],
        "actor_id": record["actor"]["id"],
        **record["context"],
    }
    return [_cell(flat[column]) for column in CSV_COLUMNS]


def write_records(
    records: Iterable[dict[str, Any]],
    out: TextIO,
    export_format: ExportFormat,
    *,
    progress: Callable[[int], None] | None = None,
    every: int = 1000,
) -> int:
    """Write ``records`` (JSON-ready rows) to ``out`` in ``export_format``; return how many were written.

    Args:
        records: The rows, as :meth:`AuditService.iter_records` yields them.
        out: A text stream (a file opened with ``newline=""`` for CSV).
        export_format: ``"jsonl"`` or ``"csv"``.
        progress: Called with the number of rows written since its last call, every ``every`` rows and at
            the end.
        every: How often ``progress`` is called.

    Raises:
        InvalidInputError: An unknown format.
    """
    if export_format not in ("jsonl", "csv"):
        raise InvalidInputError("format", "must be jsonl or csv")
    # The csv module quotes a cell holding a character of the line terminator: with CRLF, a bare CR is one
    # (with "\n" alone, "agent\r=cmd()" was written unquoted and read back as a second row's formula).
    writer = csv.writer(out, lineterminator="\r\n") if export_format == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    written = pending = 0
    for record in records:
        if writer is not None:
            writer.writerow(_csv_row(record))
        else:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
        written += 1
        pending += 1
        if progress is not None and pending >= every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return written
