"""Spreadsheet cells that stay data (OWASP "CSV injection").

Excel, LibreOffice and Sheets run a cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return before one) as a formula: a meeting outcome ``=HYPERLINK(…)`` or a command line
``=cmd|' /C calc'!A0`` from a VECTR import would run on the reader's machine. CSV writers pass text
through :func:`safe_cell` (a leading ``'`` keeps it text, as OWASP advises); XLSX writers open the
workbook with :data:`XLSX_OPTIONS` so xlsxwriter writes every string as a string, never a formula or link.
"""

from __future__ import annotations

from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
XLSX_OPTIONS: dict[str, Any] = {"strings_to_formulas": False, "strings_to_urls": False}


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def unsafe_cell(value: str) -> str:
    """The text :func:`safe_cell` protected, for reading our own CSV back."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS) else value
