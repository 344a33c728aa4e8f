"""A small annual report as a real PDF: statements laid out as tables (text at column
positions, as a typesetter writes them), generated at test time for the figure tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hostile import raw_pdf, stream

Row = tuple[str, Sequence[str]]  # label, one value per year column

INCOME: list[Row] = [
    ("Net sales", ["$ 12,400", "$ 11,000"]),
    ("Cost of sales", ["7,440", "6,820"]),
    ("Gross profit", ["4,960", "4,180"]),
    ("Operating income", ["1,860", "1,540"]),
    ("Provision for income taxes", ["372", "330"]),
    ("Net income", ["1,240", "1,001"]),
]
BALANCE: list[Row] = [
    ("Total current assets", ["5,200", "4,800"]),
    ("Inventories", ["1,300", "1,250"]),
    ("Total assets", ["15,500", "14,900"]),
    ("Total current liabilities", ["2,600", "2,700"]),
]
YEARS = ("2023", "2022")


def _page(title: str, rows: Sequence[Row]) -> bytes:
    ops = [b"BT /F1 14 Tf 72 720 Td (Acme Corp) Tj ET",
           b"BT /F1 12 Tf 72 700 Td (" + title.encode() + b") Tj ET",
           b"BT /F1 10 Tf 72 684 Td ((in millions, except per share data)) Tj ET"]
    y = 650
    for x, year in zip((340, 440), YEARS, strict=True):
        ops.append(b"BT /F1 10 Tf %d %d Td (%s) Tj ET" % (x, y, year.encode()))
    for label, values in rows:
        y -= 18
        ops.append(b"BT /F1 10 Tf 72 %d Td (%s) Tj ET" % (y, label.encode()))
        for x, value in zip((340, 440), values, strict=True):
            ops.append(b"BT /F1 10 Tf %d %d Td (%s) Tj ET" % (x, y, value.encode()))
    return b"\n".join(ops)


def report_pdf(path: Path, *, income: Sequence[Row] = INCOME, balance: Sequence[Row] = BALANCE) -> Path:
    """Page 1 the income statement, page 2 the balance sheet, two year columns each."""
    pages = [_page("Consolidated Statements of Income", income),
             _page("Consolidated Balance Sheets", balance)]
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 2 >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for n, content in enumerate(pages):
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * n))
        objs.append(stream(content))
    path.write_bytes(raw_pdf(objs))
    return path
