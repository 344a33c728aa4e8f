"""The ingest script: ``rag ingest CORPUS_DIR --index INDEX_DIR [--rebuild] [--json]``.

Also ``python -m ingest ...``. Exit status: 0 the index is up to date and usable (even if
some files failed: the summary lists them); 1 no usable index resulted (no file could be
ingested) or the index cannot be written (locked, damaged, built with another encoder,
not writable); 2 usage error (a missing corpus folder, a bad setting, --index naming a
file); 130 interrupted by Ctrl-C or SIGTERM (the previous index is intact).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

# Keep this module light: `rag --help` imports it. The pipeline (torch, pypdf) is imported
# in run().


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus_dir", type=Path, metavar="CORPUS_DIR",
                        help="folder of documents (PDF, text, Markdown, HTML), searched "
                        "recursively")
    parser.add_argument("--index", type=Path, default=None, metavar="INDEX_DIR",
                        help="index folder to create or update "
                        "(default: RAG_INDEXES_DIR/default)")
    parser.add_argument("--rebuild", action="store_true",
                        help="start over: re-embed every file instead of only new or changed ones")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on stdout")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="parser processes (default RAG_PARSE_WORKERS; 0 = one per CPU core)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="chunks per embedding batch (default RAG_EMBED_BATCH_SIZE)")
    parser.add_argument("--device", default=None,
                        help="'auto', 'cpu', 'cuda', 'cuda:1', ... (default RAG_DEVICE)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--engine", choices=["local", "ray"], default=None,
                        help="'local' processes or Ray Data stages on a cluster "
                        "(default RAG_INGEST_ENGINE)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="Ray cluster for --engine ray: 'auto', HOST:6379, ray://HOST:10001 "
                        "(default RAG_RAY_ADDRESS; none = a local Ray)")


class _Bars:
    """tqdm bars on stderr, one per stage, driven by the pipeline's progress callback."""

    _UNITS: ClassVar[dict[str, str]] = {"parse": "file", "embed": "chunk", "index": "commit"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(desc=f"{stage:>5}", total=total, file=sys.stderr,
                                          unit=self._UNITS.get(stage, "it"), dynamic_ncols=True)
        if bar.total != total:
            bar.total = total  # the embed total grows as files get split
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _usage_problem(corpus: Path, index_dir: Path) -> str | None:
    """What is wrong with the paths given, before any model loads; None if nothing."""
    from rag.text import printable

    for what, path in (("corpus folder", corpus), ("index folder", index_dir)):
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            return (f"{what} '{printable(path)}' is not valid UTF-8; rename it (the index "
                    "records paths as text)")
    if not corpus.is_dir():
        why = "does not exist" if not corpus.exists() else "is not a folder"
        return f"corpus folder '{printable(corpus)}' {why}"
    if index_dir.exists() and not index_dir.is_dir():
        return (f"--index '{printable(index_dir)}' is a file, not a folder; give a folder "
                "(new or an existing index)")
    return None


def _quiet_libraries() -> None:
    """--no-progress: no bars from the libraries either (transformers' "Loading weights",
    hub downloads); read when they import, so set before the model loads."""
    import os

    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # The same clean stop as Ctrl-C: the transaction rolls back, parser workers are
    # stopped, the previous index stays as it was.
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import signal

    from rag.text import printable
    from rag_cli.common import settings_from_flags

    settings = settings_from_flags(
        parse_workers=args.workers, embed_batch_size=args.batch_size, device=args.device,
        ingest_engine=getattr(args, "engine", None), ray_address=getattr(args, "ray_address", None),
    )
    if settings is None:
        return 2
    corpus: Path = args.corpus_dir
    index_dir: Path = args.index if args.index is not None else settings.index_path("default")
    problem = _usage_problem(corpus, index_dir)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.no_progress:
        _quiet_libraries()

    from tqdm.contrib.logging import logging_redirect_tqdm

    from ingest.pipeline import ingest_folder
    from ingest.ray_engine import RayEngineError  # no Ray import until the engine runs
    from rag.store import StoreError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    bars = _Bars(enabled=not args.no_progress)
    import threading

    main_thread = threading.current_thread() is threading.main_thread()  # signal's rule
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt) if main_thread else None
    try:
        with logging_redirect_tqdm():
            summary = ingest_folder(corpus, index_dir, settings, rebuild=args.rebuild,
                                    progress=bars)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except RayEngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the corpus changing under us, a full disk, ...
        where = printable(e.filename) if e.filename else printable(index_dir)
        print(f"error: {where}: {e.strerror or e}; the previous index is intact",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: the index at {printable(index_dir)} is as it was at its last "
              "commit", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        bars.close()

    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(format_summary(summary.to_json()))
    if summary.total_files == 0:
        failed = f" ({len(summary.files_failed)} failed, listed above)" \
            if summary.files_failed else ""
        print(f"error: no usable index: nothing could be ingested from "
              f"{printable(corpus)}{failed}", file=sys.stderr)
        return 1
    return 0


def format_summary(s: dict[str, Any]) -> str:
    from rag.text import printable

    lines = [
        f"ingested {s['files_ok']} file(s): {s['pages']} pages, {s['chunks']} chunks in "
        f"{s['seconds']:.1f} s ({s['chunks_per_s']:.1f} chunks/s); "
        f"{s['files_unchanged']} unchanged, {s['files_removed']} removed, "
        f"{len(s['files_skipped'])} skipped, {len(s['files_failed'])} failed",
        f"index {s['index']}: {s['total_files']} files, {s['total_chunks']} chunks",
    ]
    for kind in ("files_failed", "files_skipped", "warnings"):
        for item in s[kind]:
            lines.append(f"  {kind.removeprefix('files_')}: {printable(item['path'])}: "
                         f"{item['reason']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
