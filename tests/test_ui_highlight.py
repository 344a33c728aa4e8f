"""Document text is shown literally; supporting sentences are the ones highlighted."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ui.highlight import (
    answer_markdown,
    escape_markdown,
    highlighted_markdown,
    passage_markdown,
    split_sentences,
    supporting_segments,
)


def _unescape(md: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


def _all_escaped(md: str) -> bool:
    i = 0
    while i < len(md):
        ch = md[i]
        if ch == "\\":
            i += 2
            continue
        if re.match(r"[!-/:-@\[-`{-~]", ch):
            return False
        i += 1
    return True


def test_escape_neutralises_markup() -> None:
    hostile = "<script>alert(1)</script> ![x](http://evil/x.png) $x^2$ :red[hi] # Head *b* `c`"
    md = escape_markdown(hostile)
    assert _all_escaped(md)
    assert _unescape(md) == hostile


@given(st.text(max_size=200))
def test_escape_round_trips_and_escapes_everything(text: str) -> None:
    md = escape_markdown(text)
    assert _all_escaped(md)
    assert "\n" not in md
    assert _unescape(md) == re.sub(r"\s+", " ", text)


@given(st.text(max_size=300))
def test_sentences_cover_the_text(text: str) -> None:
    assert "".join(split_sentences(text)) == text


def test_split_sentences() -> None:
    text = "The Eiffel Tower is in Paris. It was built in 1889! Was it tall? Yes"
    assert split_sentences(text) == [
        "The Eiffel Tower is in Paris.",
        " It was built in 1889!",
        " Was it tall?",
        " Yes",
    ]


def test_supporting_sentence_is_marked() -> None:
    passage = (
        "Paris is the capital of France. The Eiffel Tower was completed in 1889 for the World's "
        "Fair. Bread is sold in bakeries."
    )
    answer = "The Eiffel Tower was completed in 1889 [1]."
    marked = [s.text.strip() for s in supporting_segments(passage, answer) if s.supported]
    assert marked == ["The Eiffel Tower was completed in 1889 for the World's Fair."]


def test_no_overlap_no_highlight() -> None:
    segs = supporting_segments("Cats sleep a lot. Dogs bark.", "Quantum chromodynamics [2].")
    assert not any(s.supported for s in segs)


def test_highlighted_markdown_is_escaped_and_marks_support() -> None:
    passage = "Costs were $5 <b>bold</b>. The [1] warranty lasts 24 months."
    answer = "The warranty lasts 24 months [1]."
    md = highlighted_markdown(passage, answer)
    assert ":orange-background[" in md
    inside = md.split(":orange-background[", 1)[1].rsplit("]", 1)[0]
    assert _unescape(inside) == "The [1] warranty lasts 24 months."
    assert _all_escaped(inside)
    assert "\\$5 \\<b\\>bold\\<\\/b\\>" in md


def test_answer_markdown_bolds_citations_only() -> None:
    md = answer_markdown("It is *big* [1] and <i>old</i> [12].")
    assert "**\\[1\\]**" in md and "**\\[12\\]**" in md
    assert "\\*big\\*" in md and "\\<i\\>" in md


def test_passages_keep_their_lines_and_show_markdown_safely() -> None:
    from ui.highlight import passage_markdown

    text = (
        "# Capitals ##\n\nCountry Capital\nDenmark Copenhagen\n- first item\n"
        "![pixel](http://evil.test/p.png) <img src=x> [link](http://evil.test) \ue14c icon"
    )
    md = passage_markdown(text, {"copenhagen"})
    lines = md.split("\n")
    assert lines[0] == "**Capitals**"  # a heading, not "# Capitals ##"
    assert lines[2] == "Country Capital\\"  # table rows stay rows (hard line breaks)
    assert lines[3] == "Denmark :orange-background[Copenhagen]\\"
    assert lines[4] == "• first item\\"
    # Images, HTML and links from the document are text; icon-font glyphs (boxes) are dropped.
    assert "\\!\\[pixel\\]\\(http" in lines[5] and "\\<img" in lines[5] and "\\[link\\]" in lines[5]
    assert "\ue14c" not in md


def test_support_words_are_the_answers_own() -> None:
    from ui.highlight import support_words

    assert support_words("The capital of Denmark is Copenhagen [1]", "What is the capital of Denmark?") == {
        "copenhagen"
    }


def test_relevance_dots() -> None:
    from ui.source_view import relevance

    both_first = 2 / 61
    assert relevance(both_first, both_first, "hybrid", 60) == "●●●●●"
    assert relevance(1 / 61, both_first, "hybrid", 60) == "●●●○○"  # first in one search only
    assert relevance(0.2, 0.8, "dense", 60) == "●○○○○"
    assert relevance(8.0, 8.0, "bm25", 60) == "●●●●●"


def test_source_heading_names_the_page_heading_safely() -> None:
    from rag.types import Source
    from ui.source_view import source_heading

    s = Source(1, "3M_2018_10K.pdf", 60, 0.03, "text", heading="Statement of *Cash* Flows")
    assert source_heading(s, True, "●●●○○") == (
        "**\\[1\\] 3M\\_2018\\_10K\\.pdf** · page 60 · Statement of \\*Cash\\* Flows · relevance ●●●○○"
        " · :green-badge[cited]")
    text = Source(2, "notes.md", None, 0.02, "text", heading="ignored")  # no page: no heading
    assert "ignored" not in source_heading(text, False, "●○○○○")


def test_pdf_table_rows_are_shown_as_a_table() -> None:
    text = (
        "Table 1: EU Countries Information\n"
        "Country | Population (millions) | Capital\n"
        "Austria | Population (millions): 8.9 | Capital: Vienna\n"
        "Belgium | Population (millions): 11.5 | Capital: Brussels\n"
        "3"
    )
    md = passage_markdown(text, frozenset({"vienna"}))
    lines = md.splitlines()
    assert "| Country | Population \\(millions\\) | Capital |" in lines
    assert "| --- | --- | --- |" in lines
    assert "| Austria | 8\\.9 | :orange-background[Vienna] |" in lines
    assert lines[0].startswith("Table 1") and lines[-1] == "3"


def test_table_cut_by_the_passage_start_gets_its_headings_from_the_rows() -> None:
    md = passage_markdown("Capital | Indonesia: Jakarta | Germany: Berlin\n"
                          "Currency | Indonesia: Rupia | Germany: EUR | x")
    assert md.splitlines()[:3] == ["|  | Indonesia | Germany |", "| --- | --- | --- |",
                                   "| Capital | Jakarta | Berlin |"]
    assert "| Currency | Rupia | EUR |" in md.splitlines()[3]
