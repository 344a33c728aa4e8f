"""`rag ask`: JSON output, streamed text output, and a missing index, with fake models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from rag.answer.build import build_chain
from rag.answer.chain import ABSTAIN_TEXT, RagChain
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, write_index
from rag_cli import ask as cli_ask

DOCS = {
    "eiffel.txt": "The Eiffel Tower was completed in 1889. It is 330 metres tall.",
    "report.pdf": "Quarterly revenue grew by twelve percent in the third quarter.",
}


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return write_index(tmp_path / "idx", DOCS, FakeEncoder(), pdf_page=3)


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Route cli_ask's build_chain to the fakes; record the settings it was given."""
    seen: dict[str, Any] = {}

    def fake_build(settings: Settings, index_dir: Path) -> RagChain:
        seen["settings"] = settings
        return build_chain(settings, index_dir, encoder=FakeEncoder(), generator=FakeGenerator())

    monkeypatch.setattr(cli_ask, "build_chain", fake_build)
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "0.3")
    monkeypatch.setenv("RAG_READER", "false")  # the reader is a real model
    return seen


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli_ask.add_arguments(p)
    return p.parse_args(argv)


def test_json_output(
    index_dir: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli_ask.run(parse(["When was the Eiffel Tower completed?", "--index", str(index_dir),
                            "--json", "--k", "2", "--retriever", "dense"]))
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"answer", "abstained", "method", "evidence", "sources", "timings"}
    assert out["answer"] == "The Eiffel Tower was completed in 1889. [1]"
    assert out["abstained"] is False
    assert len(out["sources"]) == 2
    first = out["sources"][0]
    assert set(first) == {"n", "source", "page", "heading", "score", "text"}
    assert first["n"] == 1 and first["source"] == "eiffel.txt" and first["page"] is None
    assert isinstance(first["score"], float) and first["text"] == DOCS["eiffel.txt"]
    assert set(out["timings"]) == {"retrieve_s", "first_token_s", "total_s"}
    assert fake_models["settings"].k == 2 and fake_models["settings"].retriever == "dense"


def test_json_abstention(
    index_dir: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli_ask.run(parse(["quantum chromodynamics lattice gauge", "--index", str(index_dir), "--json"]))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["abstained"] is True and out["answer"] == ABSTAIN_TEXT
    assert out["sources"], "nearest passages are still listed"


def test_text_mode_streams_answer_then_sources(
    index_dir: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli_ask.run(parse(["How much did quarterly revenue grow?", "--index", str(index_dir)]))
    out = capsys.readouterr().out
    assert rc == 0
    answer, sources = out.split("\nSources:\n")
    assert answer.strip() == "Quarterly revenue grew by twelve percent in the third quarter. [1]"
    assert sources.startswith("[1] report.pdf, page 3  (score ")
    assert "Quarterly revenue grew" in sources


def test_missing_index_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_ask.run(parse(["anything?", "--index", str(tmp_path / "nope")]))
    err = capsys.readouterr().err
    assert rc != 0
    assert "no index at" in err and str(tmp_path / "nope") in err and "rag ingest" in err


def test_bad_k_rejected(index_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_ask.run(parse(["q?", "--index", str(index_dir), "--k", "0"])) == 2
    assert "--k" in capsys.readouterr().err
