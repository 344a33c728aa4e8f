"""Table cells looked up by the row and heading a question names (rag.lookup)."""

from __future__ import annotations

from rag.lookup import lookup

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
