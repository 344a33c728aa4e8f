"""Answers looked up by structure (rag.answer.lookup): table cells by the row and heading a
question names, contents entries, a document's title, which document says something."""

from __future__ import annotations

from rag.answer.lookup import document_lookup, lookup, statement
from rag.types import Source

EU = (
    "Table 1: EU Countries Information\n"
    "Country | Population (millions) | Area (km2) | Capital | Official Language\n"
    "Austria | Population (millions): 8.9 | Area (km2): 83,879 | Capital: Vienna | "
    "Official Language: German\n"
    "Czech Republic | Population (millions): 10.7 | Area (km2): 78,866 | Capital: Prague | "
    "Official Language: Czech\n"
    "Finland | Population (millions): 5.5 | Area (km2): 338,424 | Capital: Helsinki | "
    "Official Language: Finnish, Swedish\n"
)
BY_COLUMNS = (
    "Indonesia | Germany | Austria\n"
    "Capital | Indonesia: Jakarta | Germany: Berlin | Austria: Vienna\n"
    "Population | Indonesia: 273,879,750 | Germany: 83,190,556 | Austria: 8,935,112\n"
)


def _answer(question: str, passages: list[str]) -> str | None:
    spans = lookup(question, passages)
    if not spans:
        return None
    (span,) = spans
    assert passages[span.passage][span.start:span.end] == span.text  # offsets are exact
    return span.text


def test_the_cell_under_the_named_heading_in_the_named_row() -> None:
    assert _answer("What is the capital of the Czech Republic?", [EU]) == "Prague"
    assert _answer("Which official languages does Finland have?", [EU]) == "Finnish, Swedish"
    assert _answer("What is the population of Austria in millions?", [EU]) == "8.9"
    assert _answer("What is the area of Finland in km2?", [EU]) == "338,424"


def test_a_table_by_columns_is_read_the_other_way_round() -> None:
    assert _answer("What is the capital of Indonesia?", [BY_COLUMNS]) == "Jakarta"
    assert _answer("What was the 2020 population estimate for Germany?", [BY_COLUMNS]) == "83,190,556"
    # Both tables agree on Austria: one answer, from whichever passage.
    assert _answer("Which city is the capital of Austria?", [BY_COLUMNS, EU]) == "Vienna"


def test_no_answer_when_unsure() -> None:
    assert _answer("What is the capital of Spain?", [EU]) is None  # no such row
    assert _answer("Tell me about Austria.", [EU]) is None  # no heading named
    assert _answer("What is Austria?", ["Austria is a country in Europe."]) is None  # no table
    # Two rows fit equally well with different values: refuse rather than pick one.
    assert _answer("What is the capital of Austria or Finland?", [EU]) is None


TOC = "Contents\n1 Foo 2\n2 Bar 2\n3 Baz 2\n4 Foo 2\n5 Bar 3\n6 Baz 3\n7 Foo 3\n8 Bar 4\n9 Baz 4\n1"
DOTTED = ("Table of Contents\n1 Introduction ........ 1\n2 Methods ....... 4\n2.1 Data (raw) .... 5\n"
          "3 Results .... 12\n")


def test_a_contents_entry_gives_its_page() -> None:
    q = "On which page does section 5 Bar start, according to the table of contents?"
    assert _answer(q, [TOC]) == "3"
    (span,) = lookup(q, [TOC])
    assert (span.kind, statement(TOC, span)) == ("toc", "Contents: 5 Bar, page 3")
    assert _answer("Which page is the Results section on?", [DOTTED]) == "12"
    assert _answer("What page has 2.1 Data (raw)?", [DOTTED]) == "5"
    # Three "Bar" sections: the question must say which.
    assert _answer("On which page does the Bar section start?", [TOC]) is None
    # Two prose lines that end in a number are not a table of contents.
    prose = "Its height is given as\nthe mast adds another 24\nmetres on page 7"
    assert _answer("Which page gives the height of the mast?", [prose]) is None
    # Page numbers going down end the contents: "Foo 2" after "Bar 9" starts a new run.
    assert _answer("Which page is Foo on?", ["A x 1\nB y 9\nFoo 2"]) is None


def _doc_answer(question: str, sources: list[Source]) -> tuple[str, str] | None:
    spans = document_lookup(question, sources, [s.text for s in sources])
    if not spans:
        return None
    (span,) = spans
    return span.text, statement(sources[span.passage].text, span)


def _src(name: str, text: str, page: int | None = 1, start: int = 0) -> Source:
    return Source(1, name, page, 0.5, text, start=start)


def test_the_title_is_the_first_line_of_the_best_document_start() -> None:
    first = _src("multicolumn.pdf", "Two-Column Document with Lorem Ipsum\nYour Name\nAbstract\nText.")
    later = _src("multicolumn.pdf", "More text here.", page=2)
    assert _doc_answer("What is the title of the two-column document?", [later, first]) == (
        "Two-Column Document with Lorem Ipsum", "Title: Two-Column Document with Lorem Ipsum")
    md = _src("notes.md", "# Oxygen chemistry\n\nOxygen is element 8.", page=None)
    assert _doc_answer("What is the title of the notes?", [md]) == ("Oxygen chemistry",
                                                                    "Title: Oxygen chemistry")
    # A first line that is a sentence, or a passage from the middle of a page, is no title.
    prose = _src("a.txt", "Oxygen is a chemical element with symbol O.", page=None)
    middle = _src("b.pdf", "Some Heading Here\nText.", start=900)
    assert _doc_answer("What is the title of the document?", [prose]) is None
    assert _doc_answer("What is the title of the document?", [middle]) is None
    # The start of another document than the best passage's is not this one's title.
    assert _doc_answer("What is the title of this document?", [middle, first]) is None
    # A title the text talks about is the reader's business, not the document's title.
    assert _doc_answer("What is the title of the book Dewar wrote?", [first]) is None


def test_which_document_names_the_file_of_the_best_passage_when_it_holds_the_question() -> None:
    toc = _src("pdflatex-outline.pdf", TOC)
    other = _src("multicolumn.pdf", "Lorem ipsum dolor sit amet.")
    got = _doc_answer("Which document has a table of contents listing sections Foo, Bar and Baz?",
                      [toc, other])
    assert got is not None and got[0] == "pdflatex-outline.pdf"
    assert got[1].startswith("The document pdflatex-outline.pdf says: Contents 1 Foo 2")
    # The best passage does not hold what the question names: no guess at a document.
    assert _doc_answer("Which file mentions the Eiffel Tower and its height?", [toc, other]) is None
    # Not a question about a document: the reader's business.
    assert _doc_answer("What sections does the contents list?", [toc]) is None
    assert _doc_answer("What file format do the Foo, Bar and Baz sections use?", [toc]) is None
