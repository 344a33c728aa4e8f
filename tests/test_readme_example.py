"""The README's Python example runs as printed, against a small index and the fake models.

The code block under "### From Python (LangChain)" is taken from README.md itself, so the
example cannot drift from the API: it is executed unchanged, in a folder holding
``indexes/sample``, with the model builders that ``rag.answer.build`` calls replaced by
the fakes of ``rag.testing`` (the real models are exercised in test_answer_real.py).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import rag.models.embed
import rag.models.generate
import rag.models.span_reader
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader, write_index

REPO = Path(__file__).resolve().parent.parent
QUESTION = "Who led the Apollo program?"  # the one the README asks
DOCS = {
    "apollo.txt": "The Apollo program was led by NASA. It landed twelve astronauts on the Moon.",
    "guide/oxygen.pdf": "Oxygen was discovered by Carl Wilhelm Scheele and Joseph Priestley.",
}


def readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^### From Python \(LangChain\)\n.*?^```python\n(.*?)^```$", readme,
                  re.DOTALL | re.MULTILINE)
    assert m is not None, "README.md has no python block under '### From Python (LangChain)'"
    return m.group(1)


@pytest.fixture
def in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with ``indexes/sample``, fake models and no stray RAG_ settings."""
    for name in [n for n in os.environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAG_DEVICE", "cpu")
    write_index(tmp_path / "indexes" / "sample", DOCS, FakeEncoder(), pdf_page=3)
    monkeypatch.chdir(tmp_path)

    def encoder(settings: Settings) -> FakeEncoder:
        return FakeEncoder()

    def generator(settings: Settings) -> FakeGenerator:
        return FakeGenerator()

    def reader(device: object) -> FakeReader:
        return FakeReader({QUESTION: "NASA"})

    monkeypatch.setattr(rag.models.embed, "build_encoder", encoder)
    monkeypatch.setattr(rag.models.generate, "build_generator", generator)
    monkeypatch.setattr(rag.models.span_reader, "shared_reader", reader)
    return tmp_path


def test_readme_example_streams_an_answer_and_names_its_source(
        in_a_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_example()
    assert QUESTION in code and "chain.stream(" in code
    exec(compile(code, "README.md (From Python)", "exec"), {"__name__": "readme_example"})
    lines = capsys.readouterr().out.splitlines()
    assert "NASA" in lines[0]  # the streamed answer, on the first line
    assert "[1] apollo.txt" in lines[1:]  # then its sources, the answering passage first
    assert "(the documents do not say)" not in lines


def test_readme_example_says_so_when_the_documents_do_not(
        in_a_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(in_a_project / "indexes" / "sample")
    write_index(in_a_project / "indexes" / "sample",
                {"bread.txt": "Sourdough rises slowly in a cool kitchen."}, FakeEncoder())
    exec(compile(readme_example(), "README.md (From Python)", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "(the documents do not say)" in out and "NASA" not in out
