"""Answers built from a whole document (rag.answer.documents): summaries that cover the
document and lists with every item cited, on sample documents ingested for real."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.pipeline import ingest_folder
from rag.answer.build import build_chain
from rag.answer.chain import RagChain
from rag.answer.documents import summary
from rag.answer.kinds import question_kind
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator
from rag.types import Chunk

SAMPLE = Path(__file__).resolve().parent.parent / "corpora" / "sample"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> RagChain:
    tmp = tmp_path_factory.mktemp("documents")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for name in ("Steam_engine.txt", "Oxygen.md", "multicolumn.pdf"):
        shutil.copy(SAMPLE / name, corpus / name)
    settings = Settings(indexes_dir=tmp / "indexes", model_cache_dir=tmp / "cache", reader=False,
                        parse_workers=1, abstain_threshold=0.0)
    enc = FakeEncoder()
    ingest_folder(corpus, tmp / "idx", settings, encoder=enc)
    return build_chain(settings, tmp / "idx", encoder=enc, generator=FakeGenerator(script="no idea [1]"))


def test_a_summary_covers_the_document_each_sentence_cited(chain: RagChain) -> None:
    answer = chain.invoke("Summarize the document about the steam engine")
    assert answer.method == "summary" and not answer.abstained
    assert answer.text.startswith("Summary of Steam_engine.txt")
    assert {s.source for s in answer.sources} == {"Steam_engine.txt"}
    # Every sentence is the document's own, in a cited passage.
    assert len(answer.evidence) == 6
    by_n = {s.n: s for s in answer.sources}
    for quote, n in zip(answer.evidence, _markers(answer.text), strict=True):
        sentence = quote.split(': "', 1)[1][:-1]
        assert sentence in by_n[n].text
    # Spread over the document: from its first part to its last, in order.
    text = (SAMPLE / "Steam_engine.txt").read_text(encoding="utf-8")
    where = [text.find(q.split(': "', 1)[1][:-1]) for q in answer.evidence]
    assert all(w >= 0 for w in where) and where == sorted(where)
    assert where[0] < len(text) / 4 and where[-1] > len(text) * 3 / 4


def _markers(text: str) -> list[int]:
    import re

    return [int(m) for m in re.findall(r"\[(\d+)\]", text)]


def test_a_list_is_read_from_the_table_column_each_item_cited(chain: RagChain) -> None:
    answer = chain.invoke("List all the countries in the table")
    assert answer.method == "list"
    items = [line[2:].rsplit(" [", 1)[0] for line in answer.text.splitlines() if line.startswith("- ")]
    assert items[:5] == ["Austria", "Belgium", "Czech Republic", "Denmark", "Finland"], answer.text
    assert all(s.source == "multicolumn.pdf" and s.page == 3 for s in answer.sources)
    assert len(_markers(answer.text)) == len(items)


def test_other_questions_are_not_summaries(chain: RagChain) -> None:
    answer = chain.invoke("Who discovered oxygen?")
    assert answer.method not in ("summary", "list")


def test_a_focused_summary_keeps_to_its_focus() -> None:
    chunks = [Chunk("r.txt", None, 0, 0, "The company sells bicycles in nine countries. " * 1
                    + "Its main risk is the price of steel, which doubled last year. "
                    "Weather is a second risk for sales in spring and summer. "
                    "The founders met at a university in Lyon in the year 1990.")]
    answer = summary("Summarize the risks in the report", "r.txt", chunks, size=2)
    assert answer is not None
    assert "risk" in answer.evidence[0] and "risk" in answer.evidence[1]
    assert "Lyon" not in answer.text


@pytest.mark.parametrize(("question", "kind"), [
    ("Summarize the document", "summary"),
    ("Give me a summary of the annual report", "summary"),
    ("List all the countries mentioned", "list"),
    ("Name all the capitals in the table", "list"),
    ("Name a type of Toyota compact trucks?", "other"),  # a factoid: one name asked
])
def test_whole_document_kinds(question: str, kind: str) -> None:
    assert question_kind(question) == kind
