"""Long real PDFs: the LangChain tutorial pipeline vs ours on financebench_dev, one run.

    nice -n 10 python benchmarks/bench_filings.py \\
        [--data ../shared/evaldata/financebench_dev] [--files N] \\
        [--systems tutorial today ours ours-noheaders] [--baseline-src /tmp/docchat-main] \\
        [--check-int8]

The data (CC BY-NC, evaluation only) is read from ../shared at run time, never copied.
Printed, for each system: page hit@1/5/10 and MRR@10 over the questions, and the ingest
time split into parse, embed and the rest, with pages/s. Systems:

- ``tutorial``: PyPDFLoader, RecursiveCharacterTextSplitter(1000, 200), all-MiniLM-L6-v2
  (sentence-transformers, fp32), LangChain FAISS; top 10 by similarity;
- ``today``: the project as it was, run from a source tree given by --baseline-src (e.g.
  ``git archive <commit> | tar -x -C /tmp/docchat-main``), in a subprocess;
- ``ours``: this tree's ``ingest_folder`` and ``HybridRetriever`` with default settings
  (``ours-noheaders``: the same without contextual chunk headers).

Also: parsing alone, one process, file by file: pypdf (today's loader) against PDFium,
with words extracted and the share of one-word lines (pypdf breaks table rows into a line
per cell); and with --check-int8, dense nDCG@10 on the SQuAD paragraph slice the quality
tests use, fp32 torch against int8 ONNX.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, machine

from rag.evaluation.metrics import QAItem, load_qa
from rag.evaluation.run import BatchedQueryEncoder, run_eval
from rag.settings import Settings
from rag.types import Encoder

DEFAULT_DATA = ROOT.parent / "shared" / "evaldata" / "financebench_dev"
METRICS = ("hit@1", "hit@5", "hit@10", "mrr@10")


def pick_slice(data: Path, n_files: int | None, only: list[str]) -> tuple[list[Path], list[QAItem]]:
    items = load_qa(data / "qa.jsonl")
    files = sorted((data / "corpus").glob("*.pdf"))
    if only:
        files = [f for f in files if any(o in f.name for o in only)]
    if n_files:
        # The first files that questions ask about, then others as distractors.
        asked = sorted({r.source for i in items for r in i.relevant})
        chosen = asked[: max(1, n_files * 2 // 3)]
        chosen += [f.name for f in files if f.name not in chosen][: n_files - len(chosen)]
        files = [data / "corpus" / n for n in sorted(chosen)]
    names = {f.name for f in files}
    items = [i for i in items if all(r.source in names for r in i.relevant)]
    return files, items


def link(files: list[Path], into: Path) -> None:
    # Copies (20 MB), not symlinks: ingest does not follow a link out of the folder it
    # ingests (issue 11), which left "ours" with nothing to read.
    into.mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, into / f.name)


# --- parsing alone ---------------------------------------------------------------------


def bench_parse(files: list[Path]) -> dict[str, dict[str, float]]:
    from ingest.pdf import read_pdf, read_pypdf

    out: dict[str, dict[str, float]] = {}
    for name, fn in (("pypdf (today)", read_pypdf), ("pdfium (ours)", read_pdf)):
        t = time.perf_counter()
        pages = words = lines = one_word = 0
        for f in files:
            warnings: list[str] = []
            kwargs: dict[str, Any] = {"ocr": False} if fn is read_pdf else {}
            doc = fn(f.read_bytes(), warnings, None, **kwargs)
            pages += len(doc.pages)
            for p in doc.pages:
                ls = [ln for ln in p.text.split("\n") if ln.strip()]
                lines += len(ls)
                one_word += sum(1 for ln in ls if len(ln.split()) == 1)
                words += len(p.text.split())
        s = time.perf_counter() - t
        out[name] = {"seconds": s, "pages": pages, "pages_per_s": pages / s, "words": words,
                     "one_word_lines": one_word / max(1, lines)}
        print(f"parse {name}: {s:.1f} s, {pages} pages ({pages / s:.1f}/s), {words} words, "
              f"{out[name]['one_word_lines']:.1%} one-word lines", flush=True)
    return out


# --- systems ---------------------------------------------------------------------------


def run_tutorial(files: list[Path], items: list[QAItem]) -> dict[str, Any]:
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.models.embed import LangChainEmbeddings, SentenceTransformerEncoder, default_encoder_path

    t0 = time.perf_counter()
    docs = []
    for f in files:
        docs.extend(PyPDFLoader(str(f)).load())
    parse_s = time.perf_counter() - t0
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    enc = SentenceTransformerEncoder(str(default_encoder_path()), device="cpu", precision="fp32")
    t = time.perf_counter()
    store = FAISS.from_documents(splits, LangChainEmbeddings(enc))
    embed_s = time.perf_counter() - t
    total = time.perf_counter() - t0

    def retrieve(q: str) -> list[Document]:
        found = store.similarity_search(q, k=10)
        # PyPDFLoader pages are 0-based and sources full paths; the QA file: 1-based, names.
        return [Document(page_content=d.page_content,
                         metadata={"source": Path(d.metadata["source"]).name,
                                   "page": int(d.metadata["page"]) + 1}) for d in found]

    metrics = run_eval(items, retrieve, k=10).to_json()
    return {"metrics": {"dense": metrics}, "seconds": total, "parse_seconds": parse_s,
            "embed_seconds": embed_s, "pages": len(docs), "chunks": len(splits)}


def run_ours(files: list[Path], items: list[QAItem], tmp: Path, **overrides: Any) -> dict[str, Any]:
    from ingest.pipeline import ingest_folder
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import HybridRetriever
    from rag.store import open_index

    settings = Settings(indexes_dir=tmp, model_cache_dir=Path(  # type: ignore[call-arg]
        os.environ.get("RAG_MODEL_CACHE_DIR", Path.home() / ".cache" / "docchat")),
        **overrides)
    corpus = tmp / "corpus"
    link(files, corpus)
    t = time.perf_counter()
    encoder = build_encoder(settings)
    load_s = time.perf_counter() - t
    summary = ingest_folder(corpus, tmp / "index", settings, encoder=encoder)
    index = open_index(tmp / "index", encoder)
    questions: Encoder = BatchedQueryEncoder(encoder, [i.question for i in items])
    metrics = {}
    for mode in ("hybrid", "dense", "bm25"):
        r = HybridRetriever(index=index, encoder=questions, mode=mode, k=10,
                            fetch_k=settings.fetch_k, rrf_k=settings.rrf_k)
        metrics[mode] = run_eval(items, r.invoke, k=10).to_json()
    index.close()
    s = summary.to_json()
    return {"metrics": metrics, "seconds": s["seconds"], "parse_seconds": s["parse_seconds"],
            "embed_seconds": s["embed_seconds"], "pages": s["pages"], "chunks": s["chunks"],
            "encoder": f"{getattr(encoder, 'precision', '?')} on {getattr(encoder, 'device', '?')}",
            "encoder_load_seconds": load_s}


_TODAY = """
import json, sys, time, os
from pathlib import Path
from ingest.pipeline import ingest_folder
from rag.models.embed import build_encoder
from rag.evaluation.run import BatchedQueryEncoder, run_eval
from rag.evaluation.metrics import load_qa
from rag.retrieval.hybrid import HybridRetriever
from rag.settings import Settings
from rag.store import open_index
tmp, qa = Path(sys.argv[1]), Path(sys.argv[2])
names = {p.name for p in (tmp / "corpus").iterdir()}
items = [i for i in load_qa(qa) if all(r.source in names for r in i.relevant)]
settings = Settings(indexes_dir=tmp)
enc = build_encoder(settings)
s = ingest_folder(tmp / "corpus", tmp / "index", settings, encoder=enc).to_json()
index = open_index(tmp / "index", enc)
q = BatchedQueryEncoder(enc, [i.question for i in items])
m = {mode: run_eval(items, HybridRetriever(index=index, encoder=q, mode=mode, k=10).invoke,
                    k=10).to_json() for mode in ("hybrid", "dense", "bm25")}
print("RESULT " + json.dumps({"metrics": m, "seconds": s["seconds"],
      "parse_seconds": s["parse_seconds"], "embed_seconds": s["embed_seconds"],
      "pages": s["pages"], "chunks": s["chunks"], "encoder": f"{enc.precision} on {enc.device}"}))
"""


def run_today(files: list[Path], data: Path, tmp: Path, src: Path) -> dict[str, Any]:
    link(files, tmp / "corpus")
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", _TODAY, str(tmp), str(data / "qa.jsonl")],
                          env=env, cwd=src, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise SystemExit(f"error: the baseline run failed:\n{proc.stderr[-3000:]}")


# --- int8 check --------------------------------------------------------------------------


def check_int8(tmp: Path) -> None:
    """Dense nDCG@10 on the SQuAD paragraph slice of tests/test_retrieval_quality.py."""
    from ingest.pipeline import ingest_folder
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import HybridRetriever
    from rag.store import open_index
    from tests.test_retrieval_quality import PARAGRAPH_ARTICLES  # the same slice

    src = ROOT / "corpora" / "squad_paragraphs"
    corpus = tmp / "squad"
    for a in PARAGRAPH_ARTICLES:
        shutil.copytree(src / "docs" / a, corpus / a)
    names = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()}
    items = [i for i in load_qa(src / "qa.jsonl") if all(r.source in names for r in i.relevant)]
    cache = Path(os.environ.get("RAG_MODEL_CACHE_DIR", Path.home() / ".cache" / "docchat"))
    for precision in ("fp32", "int8"):
        settings = Settings(indexes_dir=tmp, model_cache_dir=cache,  # type: ignore[call-arg]
                            encoder_precision=precision)
        enc = build_encoder(settings)
        s = ingest_folder(corpus, tmp / f"squad-{precision}", settings, encoder=enc, rebuild=True)
        index = open_index(tmp / f"squad-{precision}", enc)
        q = BatchedQueryEncoder(enc, [i.question for i in items])
        for mode in ("dense", "hybrid"):
            m = run_eval(items, HybridRetriever(index=index, encoder=q, mode=mode, k=10).invoke,
                         k=10).to_json()
            print(f"squad paragraphs {precision} {mode}: nDCG@10 {m['ndcg@10']:.4f} "
                  f"hit@5 {m['hit@5']:.3f} ({len(items)} questions); embed "
                  f"{s.chunks / max(s.embed_seconds, 1e-9):.1f} chunks/s", flush=True)
        index.close()


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--files", type=int, default=None, help="only this many filings (develop)")
    ap.add_argument("--only", nargs="*", default=[],
                    help="only filings whose names contain one of these (e.g. AMCOR BESTBUY)")
    ap.add_argument("--systems", nargs="*", default=["tutorial", "today", "ours"],
                    choices=["tutorial", "today", "ours", "ours-noheaders"])
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="source tree of the project as it was (for 'today')")
    ap.add_argument("--no-parse", action="store_true", help="skip the parse-only comparison")
    ap.add_argument("--check-int8", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the work folder (corpus links, indexes) here")
    args = ap.parse_args()
    if not (args.data / "qa.jsonl").exists():
        sys.exit(f"error: {args.data}/qa.jsonl not found; pass --data (see ../shared/evaldata)")
    files, items = pick_slice(args.data, args.files, args.only)
    print(f"cpu: {machine()}; {len(files)} filings, {len(items)} questions\n", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s) if args.keep is None else args.keep
        tmp.mkdir(parents=True, exist_ok=True)
        if args.check_int8:
            check_int8(tmp / "int8")
        if not args.no_parse:
            results["parse"] = bench_parse(files)
        for system in args.systems:
            t = time.perf_counter()
            if system == "tutorial":
                r = run_tutorial(files, items)
            elif system == "today":
                if args.baseline_src is None:
                    sys.exit("error: 'today' needs --baseline-src (a source tree of the old version)")
                r = run_today(files, args.data, tmp / system, args.baseline_src.resolve())
            else:
                r = run_ours(files, items, tmp / system,
                             **({"chunk_headers": False} if system == "ours-noheaders" else {}))
            results[system] = r
            print(f"{system} done in {time.perf_counter() - t:.0f} s: " + json.dumps(r), flush=True)
    print("\n| system | retriever | hit@1 | hit@5 | hit@10 | MRR@10 | ingest s | parse s | "
          "embed s | pages/s | chunks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for system in args.systems:
        r = results[system]
        for mode, m in r["metrics"].items():
            figs = " | ".join(f"{m[k]:.3f}" for k in METRICS)
            print(f"| {system} | {mode} | {figs} | {r['seconds']:.0f} | {r['parse_seconds']:.0f} "
                  f"| {r['embed_seconds']:.0f} | {r['pages'] / r['seconds']:.1f} | {r['chunks']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
