"""`rag eval`: flags, output, exit codes; the fake encoder and generator stand in for the models
except in the one real test at the end."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import rag.answer.build
import rag.answer.chain
import rag.models.embed
from ingest.pipeline import ingest_folder
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader
from rag_cli import eval as cli_eval

REPO = Path(__file__).resolve().parent.parent
ARTICLES = ("Geology.md", "Pharmacy.md", "Black_Death.md")


def _qa_lines(n: int = 0) -> list[str]:
    """The committed questions about ARTICLES (first ``n`` of them when n > 0)."""
    lines = (REPO / "corpora" / "squad" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    mine = [ln for ln in lines if any(f'"{a}"' in ln for a in ARTICLES)]
    return mine[:n] if n else mine


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_INDEXES_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ARTICLES:
        shutil.copyfile(REPO / "corpora" / "squad" / "docs" / name, corpus / name)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(_qa_lines()) + "\n", encoding="utf-8")
    return {"corpus": corpus, "qa": qa, "index": tmp_path / "indexes" / "t"}


@pytest.fixture
def fake_index(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    encoder = FakeEncoder()
    settings = _settings(env["index"])
    ingest_folder(env["corpus"], env["index"], settings, encoder=encoder)
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: encoder)
    return env


def _settings(index_dir: Path) -> Settings:
    d = index_dir.parent
    return Settings(indexes_dir=d, model_cache_dir=d)  # type: ignore[call-arg]  # Field(default)


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli_eval.add_arguments(parser)
    return cli_eval.run(parser.parse_args([*argv, "--no-progress"]))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert _run(*argv, "--json") == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_json_output_has_the_documented_keys(fake_index: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "--index", str(fake_index["index"]), "--qa", str(fake_index["qa"]))
    assert set(out) == {"hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "n"}
    assert out["n"] == len(_qa_lines())
    # 3 articles, lexical fake encoder + BM25: the right article is usually first.
    assert 0.6 < out["hit@1"] <= out["hit@5"] <= out["hit@10"] <= 1.0
    assert out["hit@1"] <= out["mrr@10"] <= out["hit@10"]


def test_limit_retriever_and_k_flags(fake_index: dict[str, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--index", str(fake_index["index"]), "--qa", str(fake_index["qa"])]
    assert _json(capsys, *base, "--limit", "7")["n"] == 7
    dense = _json(capsys, *base, "--retriever", "dense")
    bm25 = _json(capsys, *base, "--retriever", "bm25")
    assert dense != bm25  # the flag reaches the retriever
    one = _json(capsys, *base, "--k", "1")
    assert one["hit@1"] == one["hit@5"] == one["hit@10"]  # only one chunk judged


def test_answers_are_scored_through_the_chain(fake_index: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = rag.answer.build.build_chain

    def build(settings: Settings, index_dir: Path, **kw: Any) -> rag.answer.chain.RagChain:
        return real_build(settings, index_dir, encoder=kw.get("encoder"),
                          generator=FakeGenerator(), reader=FakeReader())

    monkeypatch.setattr(rag.answer.build, "build_chain", build)
    details = fake_index["index"].parent / "details.jsonl"
    out = _json(capsys, "--index", str(fake_index["index"]), "--qa", str(fake_index["qa"]),
                "--answers", "--limit", "10", "--details", str(details))
    assert {"em", "f1", "contains", "abstained", "confidently_wrong"} <= set(out)
    rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 10
    assert {"question", "reply", "gold", "verdict", "sources", "seconds"} <= set(rows[0])
    assert {r["verdict"] for r in rows} <= {"right", "wrong", "refused"}
    # The fake generator echoes the first sentence of the top passage: some overlap, rarely exact.
    assert 0.0 <= out["em"] <= out["f1"] <= 1.0
    assert out["contains"] >= out["em"]


def test_human_readable_output(fake_index: dict[str, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--index", str(fake_index["index"]), "--qa", str(fake_index["qa"])) == 0
    out = capsys.readouterr().out
    assert "retriever hybrid, k=10" in out
    for key in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10"):
        assert key in out


def test_bad_qa_line_is_a_usage_error_naming_file_and_line(
    fake_index: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    qa = fake_index["qa"]
    qa.write_text(_qa_lines(1)[0] + '\n{"id": "x", "question": "q"}\n', encoding="utf-8")
    assert _run("--index", str(fake_index["index"]), "--qa", str(qa)) == 2
    err = capsys.readouterr().err
    assert f"{qa}:2: missing key(s) ['answers', 'relevant']" in err


def test_missing_index_and_bad_flags(env: dict[str, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--index", str(env["index"]), "--qa", str(env["qa"])) == 2  # as rag ask
    assert f"no index at {env['index']}" in capsys.readouterr().err
    assert _run("--index", str(env["index"]), "--qa", str(env["qa"]), "--k", "0") == 2
    assert _run("--index", str(env["index"]), "--qa", str(env["qa"]), "--limit", "0") == 2
    with pytest.raises(SystemExit):
        _run("--index", str(env["index"]), "--qa", str(env["qa"]), "--retriever", "tfidf")


def test_index_built_with_another_encoder_is_refused(
    env: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(env["index"])
    ingest_folder(env["corpus"], env["index"], settings, encoder=FakeEncoder(dimension=32))
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: FakeEncoder(dimension=64))
    assert _run("--index", str(env["index"]), "--qa", str(env["qa"])) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.real
def test_real_encoder_end_to_end(env: dict[str, Path], real_encoder: Any,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(env["index"])
    ingest_folder(env["corpus"], env["index"], settings, encoder=real_encoder)
    # The session's encoder, so the model loads once; build_encoder itself is what it calls.
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: real_encoder)
    out = _json(capsys, "--index", str(env["index"]), "--qa", str(env["qa"]), "--limit", "40")
    assert out["n"] == 40
    assert out["hit@5"] >= 0.95
