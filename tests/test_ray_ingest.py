"""``--engine ray``: ingestion as Ray Data stages on a real two-node Ray cluster.

The cluster is two ``ray start`` processes on this machine (a head and a second node),
stopped with everything they started when the module ends. Each test runs the local
engine and the Ray engine on the same corpus and compares what the index holds: chunk
ids, texts, pages and vectors, the summary, incremental re-runs, failures, a file over the
parse time limit, and the Milvus store as the target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hostile
import numpy as np
import pytest
from procs import REPO

from ingest.pipeline import ingest_folder
from ingest.summary import IngestSummary
from rag.settings import Settings
from rag.store.backends import open_reader
from rag.testing import FakeEncoder

pytestmark = pytest.mark.scale

SAMPLE = REPO / "corpora" / "sample"


def local(settings: Settings) -> Settings:
    return settings.with_overrides(parse_workers=1, ocr=False)


def on_ray(settings: Settings, address: str, actors: int = 1) -> Settings:
    # One actor per stage keeps the suite quick on a small machine; the parity test uses
    # the default (one per node) so both nodes work.
    return local(settings).with_overrides(ingest_engine="ray", ray_address=address,
                                          ray_embed_workers=actors)


def table(settings: Settings, index: Path) -> list[tuple[str, str, int | None, str, bytes]]:
    """Every chunk: (id, source, page, text, vector bytes), sorted."""
    r = open_reader(settings, index)
    if hasattr(r, "rows"):
        rows = r.rows()
    else:  # Milvus: every live row is within reach of one broad search
        rows = [h[0] for h in r.dense_search(np.ones((1, r.manifest.dimension), np.float32) / 8,
                                             10_000)[0]]
    chunks, vecs = r.chunks(rows), r.vectors(rows)
    out = sorted((c.id, c.source, c.page, c.text, np.round(v, 5).tobytes())
                 for c, v in zip(chunks, vecs, strict=True))
    r.close()
    return out


def counts(s: IngestSummary) -> tuple[object, ...]:
    return (s.files_ok, s.files_unchanged, s.files_removed, s.files_failed, s.pages, s.chunks,
            s.total_files, s.total_chunks, s.commits)


def test_ray_ingest_gives_the_same_chunks_as_local(settings: Settings, ray_cluster: str,
                                                    tmp_path: Path) -> None:
    a = ingest_folder(SAMPLE, tmp_path / "local", local(settings), encoder=FakeEncoder())
    b = ingest_folder(SAMPLE, tmp_path / "ray", on_ray(settings, ray_cluster, 0), encoder=FakeEncoder())
    assert counts(a) == counts(b) and b.total_chunks > 100
    ta, tb = table(local(settings), tmp_path / "local"), table(local(settings), tmp_path / "ray")
    assert ta == tb
    assert {p for _, _, p, _, _ in tb} > {None}  # PDF pages made it through the stages
    import ray

    from ingest.ray_engine import embed_plan

    assert sum(1 for n in ray.nodes() if n["Alive"]) == 2
    assert embed_plan(ray, on_ray(settings, ray_cluster, 0)) == (2, 0.0)  # one actor per node


def test_ray_incremental_runs_and_failures_match_local(settings: Settings, ray_cluster: str,
                                                        tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    runs: dict[str, list[IngestSummary]] = {"local": [], "ray": []}

    def run_both() -> None:
        for name, s in (("local", local(settings)), ("ray", on_ray(settings, ray_cluster))):
            runs[name].append(ingest_folder(corpus, tmp_path / name, s, encoder=FakeEncoder()))

    run_both()
    run_both()  # nothing changed: nothing parsed or embedded
    assert runs["ray"][-1].files_ok == 0 and runs["ray"][-1].files_unchanged == 7
    (corpus / "Oxygen.md").write_text("# Oxygen\n\nOxygen has atomic number eight.\n")
    (corpus / "Steam_engine.txt").unlink()
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all")
    run_both()
    last = runs["ray"][-1]
    assert (last.files_ok, last.files_removed, len(last.files_failed)) == (1, 1, 1)
    assert last.files_failed[0]["path"] == "broken.pdf"
    for a, b in zip(runs["local"], runs["ray"], strict=True):
        assert counts(a) == counts(b)
    assert table(local(settings), tmp_path / "local") == table(local(settings), tmp_path / "ray")


def test_ray_parse_stage_has_the_local_limits(settings: Settings, ray_cluster: str,
                                              tmp_path: Path) -> None:
    """A 17 KB PDF that keeps PDFium busy for minutes fails alone, with its reason, on Ray
    as it does locally; the run goes on."""
    corpus = tmp_path / "corpus"
    hostile.write(corpus / "slow.pdf", hostile.path_operator_pdf())
    (corpus / "good.txt").write_text("The turbine was inspected in March.")
    for name, s in (("local", local(settings)), ("ray", on_ray(settings, ray_cluster))):
        out = ingest_folder(corpus, tmp_path / name, s.with_overrides(parse_timeout_s=1),
                            encoder=FakeEncoder())
        assert out.total_files == 1, name
        assert [f["path"] for f in out.files_failed] == ["slow.pdf"], name
        assert "timed out after 1 s" in out.files_failed[0]["reason"], (name, out.files_failed)


def test_ray_ingest_into_milvus(settings: Settings, ray_cluster: str, milvus_uri: str,
                                tmp_path: Path) -> None:
    target = on_ray(settings, ray_cluster).with_overrides(store="milvus", store_uri=milvus_uri,
                                                          store_prefix="ray_test")
    ingest_folder(SAMPLE, tmp_path / "local", local(settings), encoder=FakeEncoder())
    b = ingest_folder(SAMPLE, tmp_path / "ray", target, encoder=FakeEncoder())
    assert b.files_ok == 7
    assert table(local(settings), tmp_path / "local") == table(target, tmp_path / "ray")


def test_rag_ingest_engine_ray_command(settings: Settings, ray_cluster: str, tmp_path: Path) -> None:
    """The command users run, in its own process, joining the cluster by address."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAG_INDEXES_DIR": str(tmp_path),
           "RAG_PARSE_WORKERS": "1", "RAG_OCR": "false", "HF_HUB_OFFLINE": "1",
           "RAG_RAY_EMBED_WORKERS": "1"}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Zorblatt Institute was founded in 1923 in Kellerby.")
    (docs / "b.md").write_text("# Coffee\n\nHold the steam button for ten seconds to reset.")
    got = subprocess.run([sys.executable, "-m", "rag_cli.main", "ingest", str(docs), "--engine", "ray",
                          "--ray-address", ray_cluster, "--json", "--no-progress"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert (summary["files_ok"], summary["total_files"]) == (2, 2) and summary["chunks"] >= 2
    bad = subprocess.run([sys.executable, "-m", "rag_cli.main", "ingest", str(docs), "--engine", "ray",
                          "--ray-address", "127.0.0.1:1", "--rebuild", "--no-progress"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 1
    assert "cannot join the Ray cluster" in bad.stderr and "Traceback" not in bad.stderr
