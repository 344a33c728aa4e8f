"""Real-world PDFs: scans read by OCR, encrypted files, tables kept as rows, chunk headers.

Every PDF here is made by the test itself (licence-clean): a scan is text rendered to an
image and wrapped in a PDF by Pillow; a text PDF is written by :func:`text_pdf`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

from ingest.context import chunk_headers, document_header
from ingest.load import NO_TEXT_LAYER, parse_file
from ingest.pipeline import ingest_folder
from rag.answer.steps import to_sources
from rag.retrieval.hybrid import HybridRetriever, one_per_page
from rag.retrieval.statements import page_statements, question_statements
from rag.settings import Settings
from rag.store import Index, open_index
from rag.store.terms import keyword_text, query_keywords
from rag.testing import FakeEncoder
from rag.types import HEADER_SEP, Chunk, Page, ParsedDocument

SCAN_LINES = ("Turbine inspection report", "The gearbox of unit seven shows corrosion",
              "Replace the bearings before March")


def scanned_pdf(lines: tuple[str, ...] = SCAN_LINES) -> bytes:
    """One page that is only an image of text, as a scanner makes it (no text layer)."""
    img = Image.new("RGB", (1654, 2339), "white")  # A4 at 200 dpi
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines):
        draw.text((150, 200 + 110 * i), line, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, "PDF", resolution=200)
    return buf.getvalue()


def text_pdf(pages: list[list[tuple[int, int, str]]]) -> bytes:
    """A minimal PDF with real text: each page a list of (x, y, text) placed one by one."""
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    font_id = 3
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for cells in pages:
        ops = "".join(f"BT /F1 11 Tf {x} {y} Td ({t}) Tj ET\n" for x, y, t in cells).encode()
        objs.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"endstream")
        content = len(objs)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font_id))
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, xref))
    return out.getvalue()


# --- OCR -----------------------------------------------------------------------------------


def test_scanned_page_is_read_by_ocr(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf())
    out = parse_file(tmp_path / "scan.pdf", "scan.pdf")
    assert out.error is None and out.document is not None
    text = out.document.pages[0].text.lower()
    for word in ("turbine", "inspection", "gearbox", "corrosion", "bearings", "march"):
        assert word in text, (word, text)
    assert any("OCR" in w for w in out.warnings)


def test_ocr_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf())
    out = parse_file(tmp_path / "scan.pdf", "scan.pdf", ocr=False)
    assert out.document is None and NO_TEXT_LAYER in (out.error or "")


def test_text_pages_are_not_ocred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.ocr

    calls: list[object] = []
    monkeypatch.setattr(ingest.ocr, "ocr_page", lambda page: calls.append(page) or "")
    (tmp_path / "t.pdf").write_bytes(text_pdf([[(72, 700, "A page with a real text layer")]]))
    out = parse_file(tmp_path / "t.pdf", "t.pdf")
    assert out.document is not None and "real text layer" in out.document.pages[0].text
    assert calls == []


def test_ocr_page_is_found_by_search(tmp_path: Path, settings: Settings) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "scan.pdf").write_bytes(scanned_pdf())
    (corpus / "other.pdf").write_bytes(text_pdf([[(72, 700, "Quarterly sales of garden tools")]]))
    enc = FakeEncoder()
    summary = ingest_folder(corpus, tmp_path / "index", settings, encoder=enc)
    assert summary.files_failed == []
    r = HybridRetriever(index=open_index(tmp_path / "index", enc), encoder=enc, k=1)
    top = r.search("which unit has gearbox corrosion?")[0]
    assert (top.metadata["source"], top.metadata["page"]) == ("scan.pdf", 1)


# --- encryption ----------------------------------------------------------------------------


def _encrypted(user_password: str) -> bytes:
    w = PdfWriter()
    w.add_page(PdfReader(io.BytesIO(text_pdf([[(72, 700, "Secret sauce recipe")]]))).pages[0])
    w.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_aes_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    (tmp_path / "aes.pdf").write_bytes(_encrypted(""))
    out = parse_file(tmp_path / "aes.pdf", "aes.pdf")
    assert out.error is None and out.document is not None
    assert "Secret sauce recipe" in out.document.pages[0].text


def test_password_protected_pdf_is_reported(tmp_path: Path) -> None:
    (tmp_path / "locked.pdf").write_bytes(_encrypted("hunter2"))
    out = parse_file(tmp_path / "locked.pdf", "locked.pdf")
    assert out.document is None
    assert "encrypted" in (out.error or "") and "password" in (out.error or "")


# --- tables and headers --------------------------------------------------------------------

_BALANCE = [
    (72, 740, "Consolidated Balance Sheet"),
    (72, 700, "(Millions)"), (360, 700, "2021"), (440, 700, "2020"),
    (72, 680, "Cash and cash equivalents"), (360, 680, "2,104"), (440, 680, "1,987"),
    (72, 660, "Inventories"), (360, 660, "3,870"), (440, 660, "3,412"),
    (72, 640, "Total assets"), (360, 640, "41,210"), (440, 640, "39,402"),
]


def test_table_rows_stay_on_one_line_under_their_headings(tmp_path: Path) -> None:
    (tmp_path / "bs.pdf").write_bytes(text_pdf([_BALANCE]))
    out = parse_file(tmp_path / "bs.pdf", "bs.pdf")
    assert out.document is not None
    lines = out.document.pages[0].text.splitlines()
    assert lines[0] == "Consolidated Balance Sheet"  # not a table line: as PDFium wrote it
    assert "(Millions) | 2021 | 2020" in lines
    assert "Inventories | 2021: 3,870 | 2020: 3,412" in lines


# A table laid out by columns, with a merged cell and a two-word value: which capital
# belongs to which country is only in the geometry.
_CAPITALS = [
    (72, 740, "Namespaces are one honking great idea."),
    (160, 700, "Indonesia"), (260, 700, "Germany"), (360, 700, "Austria"),
    (72, 680, "Continent"), (160, 680, "Asia"), (300, 680, "Europe"),
    (72, 660, "Capital"), (160, 660, "Jakarta"), (260, 660, "Berlin"), (360, 660, "Vienna"),
    (72, 640, "Currency"), (160, 640, "Rupia"), (260, 640, "EUR"), (360, 640, "EUR"),
    (72, 620, "Population"), (160, 620, "273,879,750"), (260, 620, "83,190,556"),
    (360, 620, "8,935,112"),
]


def test_table_by_columns_is_written_row_by_row(tmp_path: Path) -> None:
    (tmp_path / "t.pdf").write_bytes(text_pdf([_CAPITALS]))
    out = parse_file(tmp_path / "t.pdf", "t.pdf")
    assert out.document is not None
    lines = out.document.pages[0].text.splitlines()
    assert lines[0] == "Namespaces are one honking great idea."
    assert "Capital | Indonesia: Jakarta | Germany: Berlin | Austria: Vienna" in lines
    assert "Population | Indonesia: 273,879,750 | Germany: 83,190,556 | Austria: 8,935,112" in lines
    assert any(line.startswith("Continent | Indonesia: Asia | ") for line in lines)


def test_text_that_is_no_table_is_left_as_it_was(tmp_path: Path) -> None:
    toc = [(72, 700 - 20 * i, f"{i} Section") for i in range(1, 6)]
    toc += [(400, 700 - 20 * i, str(i + 1)) for i in range(1, 6)]  # page numbers
    prose = [(72, 700 - 20 * i, f"line {i} of the left column of prose") for i in range(5)]
    prose += [(330, 700 - 20 * i, f"line {i} of the right column of prose") for i in range(5)]
    (tmp_path / "t.pdf").write_bytes(text_pdf([toc, prose]))
    out = parse_file(tmp_path / "t.pdf", "t.pdf")
    assert out.document is not None
    assert all("|" not in page.text for page in out.document.pages)


def test_table_row_is_found_from_its_figures(tmp_path: Path, settings: Settings) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "bs.pdf").write_bytes(text_pdf([[(72, 700, "Letter to shareholders")], _BALANCE]))
    enc = FakeEncoder()
    ingest_folder(corpus, tmp_path / "index", settings, encoder=enc)
    r = HybridRetriever(index=open_index(tmp_path / "index", enc), encoder=enc, k=1, mode="bm25")
    top = r.search("Inventories were 3,870 million?")[0]
    assert top.metadata["page"] == 2 and "Inventories | 2021: 3,870" in top.page_content


def test_document_header_names_file_title_and_period() -> None:
    doc = ParsedDocument("filings/ACME_2023Q2_10Q.pdf", [
        Page(1, "FORM 10-Q\nFor the quarterly period ended December 31, 2022\n"),
        Page(2, "Table of Contents\nConsolidated Statements of Cash Flows\n(Millions) 2022"),
        Page(3, "Table of Contents\nNotes to the statements\nNote 1"),
        Page(4, "Table of Contents\nExhibits"),
        Page(5, "Table of Contents\nACME,\nINC.\nCONSOLIDATED BALANCE SHEETS\n(In thousands)"),
        Page(6, "JOHNSON & JOHNSON AND SUBSIDIARY COMPANIES\n(Dollars in Millions)\n"
                "CONSOLIDATED STATEMENTS OF EARNINGS\nSales to customers 1 2"),
        Page(7, "SQUARE,\nINC.\nCONSOLIDATED\nBALANCE\nSHEETS\n(In thousands)\nAssets"),
    ], title="Acme Corp quarterly report")
    head = document_header(doc)
    assert head.startswith("ACME 2023 Q2 10Q")
    assert "Acme Corp quarterly report" in head and "period ended December 31, 2022" in head
    headers = chunk_headers(doc)
    # The running header "Table of Contents" is not a heading; the statement title is.
    assert headers[1].split("\n")[1].startswith("Consolidated Statements of Cash Flows")
    assert headers[2].split("\n")[1].startswith("Notes to the statements")
    assert "Table of Contents" not in headers[2]
    # A line ending in a comma is unfinished: "ACME," and "INC." do not fill the heading.
    assert headers[4].split("\n")[1] == "ACME, INC. · CONSOLIDATED BALANCE SHEETS"
    # A heading set one word per line is read as one line.
    assert headers[6].split("\n")[1] == "SQUARE, INC. CONSOLIDATED BALANCE SHEETS"
    # A statement's title after a long first line is still the page's heading.
    assert headers[5].split("\n")[1] == ("JOHNSON & JOHNSON AND SUBSIDIARY COMPANIES · "
                                         "CONSOLIDATED STATEMENTS OF EARNINGS")
    # A file name without letters carries no context: no header rather than noise.
    assert chunk_headers(ParsedDocument("Black_Death/0003.txt", [Page(None, "Plague.")])) == [""]


def test_chunk_header_makes_the_right_filing_win(tmp_path: Path, settings: Settings) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    body = "Capital expenditures were 1,204 million, mostly for new stores.\n"
    for year in (2019, 2020, 2021):
        (corpus / f"acme_{year}_annual_report.txt").write_text(body)
    question = "What were FY2020 capital expenditures at ACME?"
    enc = FakeEncoder()
    for headers in (True, False):
        index_dir = tmp_path / f"index-{headers}"
        ingest_folder(corpus, index_dir, settings.with_overrides(chunk_headers=headers),
                      encoder=enc)
        index = open_index(index_dir, enc)
        for mode in ("hybrid", "bm25", "dense"):
            top = HybridRetriever(index=index, encoder=enc, k=3, mode=mode).search(question)
            cos = [d.metadata["dense_score"] for d in top]
            if headers:  # the 2020 filing wins, clearly
                assert top[0].metadata["source"] == "acme_2020_annual_report.txt", (mode, top)
                assert cos[0] > cos[1] + 1e-4, (mode, cos)
            else:  # the passages alone are the same: nothing tells the filings apart
                assert max(cos) - min(cos) < 1e-6, (mode, cos)
        index.close()


def test_keyword_text_splits_fiscal_years_and_numbers() -> None:
    assert keyword_text("FY2018 capex 1,577") == "FY 2018 capex 1577"
    q = query_keywords("Round your answer to two decimal places. What is FY2019 revenue? "
                       "Give a response based on the income statement.")
    assert "2019" in q.split() and "revenue" in q and "income statement" in q
    for gone in ("Round", "answer", "decimal", "Give", "response"):
        assert gone not in q.split()
    assert query_keywords("Please answer") == "Please answer"  # nothing would be left


def test_justified_two_column_prose_is_not_taken_for_a_table() -> None:
    # multicolumn.pdf: two justified columns of Lorem Ipsum (pages 1-2; wide gaps after full
    # stops, at a different place on every line), then a real table (page 3).
    path = Path(__file__).resolve().parent / "data" / "pdfs" / "multicolumn.pdf"
    out = parse_file(path, "multicolumn.pdf")
    assert out.document is not None
    prose, table = out.document.pages[:2], out.document.pages[2]
    assert all(" | " not in p.text for p in prose)
    assert "Denmark | Population (millions): 5.8 | Area (km2): 42,951 | Capital: Copenhagen" \
        in table.text


# --- one passage per page ----------------------------------------------------------------


def test_one_per_page_keeps_each_pages_best_chunk_in_place() -> None:
    def chunk(source: str, page: int | None, start: int) -> Chunk:
        return Chunk(source=source, page=page, start=start, end=start + 1, text=f"{source}{start}")

    ranked = [chunk("a.pdf", 3, 0), chunk("a.pdf", 3, 1), chunk("notes.md", None, 0),
              chunk("notes.md", None, 1), chunk("a.pdf", 4, 0), chunk("a.pdf", 3, 2),
              chunk("b.pdf", 3, 0)]
    by_id = {c.id: c for c in ranked}
    order = [by_id[cid] for cid in one_per_page([c.id for c in ranked], by_id)]
    # Page 3 of a.pdf keeps its best chunk's place; its others wait behind every other page.
    # A document without pages is its own unit: both of its chunks keep their places.
    assert [(c.source, c.page, c.start) for c in order] == [
        ("a.pdf", 3, 0), ("notes.md", None, 0), ("notes.md", None, 1), ("a.pdf", 4, 0),
        ("b.pdf", 3, 0), ("a.pdf", 3, 1), ("a.pdf", 3, 2)]


def test_sources_come_from_distinct_pages(tmp_path: Path, settings: Settings) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    # Page 1 is long enough for several chunks, all about the gearbox; page 2 mentions it once.
    page1 = [(72, 760 - 14 * i, f"Gearbox inspection line {i}: the gearbox of unit {i} shows "
              "corrosion on the bearings.") for i in range(48)]
    page2 = [(72, 700, "Maintenance budget: the gearbox repairs of unit seven cost 4,000.")]
    (corpus / "report.pdf").write_bytes(text_pdf([page1, page2]))
    enc = FakeEncoder()
    ingest_folder(corpus, tmp_path / "index", settings.with_overrides(chunk_tokens=64,
                                                                     chunk_overlap=8), encoder=enc)
    index = open_index(tmp_path / "index", enc)
    question = "Which gearbox shows corrosion?"
    pages = {flag: [d.metadata["page"] for d in HybridRetriever(
        index=index, encoder=enc, k=3, distinct_pages=flag).search(question)] for flag in (True, False)}
    assert pages[False] == [1, 1, 1]  # the long page fills the sources
    assert pages[True][:2] == [1, 2] and pages[True][2] == 1  # each page once, then the rest
    index.close()


# --- the financial statement a question needs ----------------------------------------------


@pytest.mark.parametrize(("question", "wanted"), [
    ("What is the FY2018 capital expenditure amount (in USD millions) for 3M?", {"cash"}),
    ("Does AMCOR have an improving gross margin profile as of FY2023?", {"income"}),
    ("Has the quick ratio improved or declined between FY2023 and FY2022?", {"balance"}),
    ("Using the balance sheet, what is the year end FY2018 net PPNE?", {"balance"}),
    ("What is FY2020 days payable outstanding (DPO)? Use the statement of income too.",
     {"balance", "income"}),
    ("What production rate changes is Boeing forecasting for FY2023?", set()),
    ("Who was the first president of the United States?", set()),
])
def test_questions_name_the_statement_they_need(question: str, wanted: set[str]) -> None:
    assert question_statements(question) == wanted


@pytest.mark.parametrize(("heading", "kinds"), [
    ("3M Company and Subsidiaries · Consolidated Statement of Cash Flows", {"cash"}),
    ("3M Company and Subsidiaries · Consolidated Balance Shee t", {"balance"}),  # split word
    ("The Boeing Company · Consolidated Statements of Financial Position", {"balance"}),
    ("Consolidated Statements of Earnings · $ and shares in millions", {"income"}),
    ("CONSOLIDATED STATEMENTS OF OPERATIONS · (Amounts in millions)", {"income"}),
    ("Consolidated Statements of Comprehensive Income", set()),  # another statement
    ("Other cash flows from financing activities may include", set()),  # prose about one
    ("Notes to the Consolidated Financial Statements", set()),
    # MD&A and note headings that contain a statement's name are not the statement.
    ("Off-Balance Sheet Arrangements", set()),
    ("Balance Sheet Data", set()),
    ("Income Statement Review", set()),
    ("Notes to the Income Statement", set()),
    ("Group Cash Flow Statement", {"cash"}),
    ("Consolidated Statement of Profit or Loss", {"income"}),
])
def test_pages_are_statements_by_their_heading(heading: str, kinds: set[str]) -> None:
    chunk = Chunk("ACME_2018_10K.pdf", 7, 0, 4, "text",
                  header=f"ACME 2018 10K · fiscal year ended December 31, 2018\n{heading}")
    assert chunk.heading == heading and page_statements(chunk.heading) == kinds
    # The header's first line names the document; a title that names a statement is no
    # heading of the page.
    assert Chunk("a.pdf", 1, 0, 4, "text", header="Annual report and balance sheets").heading == ""


_MDA = [(72, 700 - 16 * i, line) for i, line in enumerate([
    "Management's Discussion and Analysis",
    "Capital expenditures were 1,577 million in 2018 and 1,373 million in 2017.",
    "Capital expenditures for 2019 are expected to be about 1.7 billion, and capital",
    "expenditure plans depend on cash flow from operations. The cash flow statement",
    "shows the capital expenditure amount for each year."])]
_CASH_FLOWS = [(72, 700 - 16 * i, line) for i, line in enumerate([
    "Consolidated Statements of Cash Flows",
    "Net cash provided by operating activities 6,439 6,240",
    "Purchases of property, plant and equipment (1,577) (1,373)",
    "Proceeds from sale of businesses 846 1,065"])]
_BALANCE_SHEET = [(72, 700 - 16 * i, line) for i, line in enumerate([
    "Consolidated Balance Sheets",
    "Property, plant and equipment, net 8,738 8,866",
    "Total assets 36,500 37,987"])]


def _filing_index(tmp_path: Path, settings: Settings) -> tuple[Index, FakeEncoder]:
    """An index of one three-page filing: discussion, cash flows, balance sheet."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "ACME_2018_10K.pdf").write_bytes(text_pdf([_MDA, _CASH_FLOWS, _BALANCE_SHEET]))
    enc = FakeEncoder()
    ingest_folder(corpus, tmp_path / "index", settings, encoder=enc)
    return open_index(tmp_path / "index", enc), enc


def test_the_statement_a_question_needs_comes_first(tmp_path: Path, settings: Settings) -> None:
    index, enc = _filing_index(tmp_path, settings)
    capex = ("What is the FY2018 capital expenditure amount (in USD millions) for ACME? Give a "
             "response by relying on the details shown in the cash flow statement.")
    ppne = "What is the year end FY2018 net PPNE for ACME? Answer in USD billions."

    def pages(question: str, on: bool) -> list[int]:
        r = HybridRetriever(index=index, encoder=enc, k=3, statement_pages=on)
        return [d.metadata["page"] for d in r.search(question)]

    # The discussion page repeats the question's words; the statement holds the figure.
    assert pages(capex, False)[0] == 1
    assert pages(capex, True)[0] == 2
    assert pages(ppne, True)[0] == 3
    # The source shown to the user names the statement beside the page number.
    shown = to_sources(HybridRetriever(index=index, encoder=enc, k=1).search(capex))[0]
    assert (shown.page, shown.heading.split(HEADER_SEP)[0]) == (2, "Consolidated Statements of Cash Flows")
    # A question that needs a statement no page is ranks as without the feature.
    other = "What were ACME's net income and revenue in 2018, as discussed by management?"
    assert question_statements(other) == {"income"}
    assert pages(other, True) == pages(other, False)
    index.close()


def test_a_langchain_vector_store_without_headers_keeps_the_statement_ranking(
        tmp_path: Path, settings: Settings) -> None:
    # The dense side may be any LangChain vector store; one filled without our header
    # metadata must not hide the header the index's keyword side carries for the chunk.
    from langchain_core.vectorstores import InMemoryVectorStore

    from rag.models.embed import LangChainEmbeddings
    from rag.retrieval.hybrid import VectorStoreSearch

    index, enc = _filing_index(tmp_path, settings)
    chunks = index.chunks(index.rows())
    store = InMemoryVectorStore(LangChainEmbeddings(enc))
    docs = [c.to_document() for c in chunks]
    for d in docs:
        d.metadata.pop("header", None)
    store.add_documents(docs, ids=[c.id for c in chunks])
    capex = "What is the FY2018 capital expenditure amount for ACME, from the cash flow statement?"
    r = HybridRetriever(index=index, encoder=enc, k=3, dense=VectorStoreSearch(store))
    top = r.search(capex)
    assert top[0].metadata["page"] == 2
    assert top[0].metadata["header"] == next(c.header for c in chunks if c.page == 2)
    index.close()
