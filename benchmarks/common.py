"""What every benchmark script needs before and around its measurement, written once.

Imported by each script before anything of the project (``python benchmarks/X.py`` puts
``benchmarks/`` on ``sys.path``). Importing it puts the repository and ``scripts/`` on
``sys.path``, so ``rag``, ``ingest`` and ``train_reader`` import without ``PYTHONPATH=.``,
and sets the environment the models need before any of them is imported: nothing is
downloaded (``HF_HUB_OFFLINE``) and the tokenizers do not fork threads into the parse
workers (``TOKENIZERS_PARALLELISM``). A value the caller exported wins.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# After the script's folder and the PYTHONPATH entries, before site-packages: this tree is
# the one imported, unless PYTHONPATH names another on purpose (bench_bm25_quality.py scores
# an index under an earlier checkout that way).
_AT = 1 + len([e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e])
for _path in (ROOT / "scripts", ROOT):  # inserted in turn at _AT: ROOT ends up first
    if str(_path) not in sys.path:
        sys.path.insert(_AT, str(_path))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if TYPE_CHECKING:
    from ingest.summary import IngestSummary
    from rag.settings import Settings
    from rag.types import Encoder

SQUAD_QA = ROOT / "corpora" / "squad" / "qa.jsonl"
SQUAD_PARAGRAPHS = ROOT / "corpora" / "squad_paragraphs" / "docs"


def paragraph_texts() -> list[str]:
    """The SQuAD dev paragraphs of corpora/squad_paragraphs, in a fixed order: the real texts
    the synthetic indexes repeat."""
    return [p.read_text(encoding="utf-8").strip() for p in sorted(SQUAD_PARAGRAPHS.rglob("*.txt"))]


def squad_questions(n: int | None = None) -> list[str]:
    """The first ``n`` (all: None) questions of corpora/squad/qa.jsonl, the timed queries."""
    from rag.evaluation.metrics import load_qa

    return [item.question for item in load_qa(SQUAD_QA)][:n]


def latency_ms(fn: Callable[[str], object], queries: Sequence[str],
               warmup: int = 5) -> tuple[float, float]:
    """p50 and p95 milliseconds of ``fn`` over the queries, one at a time as the chat asks.

    The first ``warmup`` queries run untimed first: first calls pay for lazy loading.
    """
    for q in queries[:warmup]:
        fn(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return float(p50), float(p95)


def machine() -> str:
    """The CPU, its widest vector unit, the cores and the load: what a figure was measured on.

    The load average goes with every figure: on a shared machine latencies are upper bounds.
    """
    name, isa = platform.processor() or platform.machine(), "?"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    if cpuinfo:
        flags = set(cpuinfo.split())
        isa = ("AVX-512 bf16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags
               else "AVX2" if "avx2" in flags else "no AVX2")
    return f"{name} ({isa}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"


def build_index(corpus: Path, index_dir: Path, settings: Settings | None = None,
                encoder: Encoder | None = None, *, rebuild: bool = False) -> IngestSummary:
    """``corpus`` ingested into ``index_dir`` as ``rag ingest`` does (the real encoder unless
    one is given), for the benchmarks that measure over a real index."""
    from ingest.pipeline import ingest_folder
    from rag.settings import Settings

    settings = settings if settings is not None else Settings()  # type: ignore[call-arg]
    if encoder is None:
        from rag.models.embed import build_encoder

        encoder = build_encoder(settings)
    return ingest_folder(corpus, index_dir, settings, encoder=encoder, rebuild=rebuild)
