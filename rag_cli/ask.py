"""`rag ask "QUESTION" --index INDEX_DIR [--json]`: answer from an index, with sources.

Exit status: 0 answered (an abstention included); 1 the index cannot be used (damaged,
built with another encoder); 2 usage error (no index there, a bad setting or flag, text
that is not UTF-8).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from rag.answer.build import build_chain
from rag.answer.chain import ABSTAIN_TEXT, Done, RagChain, Retrieved, Token
from rag.settings import Settings
from rag.text import printable
from rag.types import Answer, Source
from rag_cli.common import index_error, settings_from_flags

_PASSAGE_CHARS = 300  # of each source shown in text mode; --json gives the whole passage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="the question to answer")
    parser.add_argument(
        "--index", required=True,
        help="index folder (or the name of an index under RAG_INDEXES_DIR)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no streaming")
    parser.add_argument("--k", type=int, default=None, help="passages to retrieve (default: RAG_K)")
    parser.add_argument(
        "--retriever", choices=["hybrid", "dense", "bm25"], default=None,
        help="retrieval mode (default: RAG_RETRIEVER)",
    )


def resolve_index(settings: Settings, value: str) -> Path:
    """A path as given; a bare name that is not a folder here is looked up in indexes_dir."""
    path = Path(value).expanduser()
    if path.exists() or "/" in value or "\\" in value:
        return path
    try:
        named = settings.index_path(value)
    except ValueError:
        return path
    return named if named.exists() else path


def source_json(s: Source) -> dict[str, Any]:
    return {"n": s.n, "source": s.source, "page": s.page, "heading": s.heading, "score": s.score,
            "text": s.text}


def answer_json(a: Answer) -> dict[str, Any]:
    return {
        "answer": a.text,
        "abstained": a.abstained,
        "method": a.method,
        "evidence": a.evidence,
        "sources": [source_json(s) for s in a.sources],
        "timings": {
            key: round(a.timings.get(key, 0.0), 4)
            for key in ("retrieve_s", "read_s", "first_token_s", "total_s")
            if key in a.timings or key != "read_s"
        },
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_sources(sources: list[Source], heading: str, out: TextIO) -> None:
    if not sources:
        return
    print(f"\n{heading}:", file=out)
    for s in sources:
        name = printable(s.source)  # a newline in a file name must not split the listing
        where = name if s.page is None else f"{name}, page {s.page}"
        if s.heading:
            where += f" ({printable(s.heading)})"
        text = " ".join(s.text.split())
        if len(text) > _PASSAGE_CHARS:
            text = text[:_PASSAGE_CHARS].rstrip() + " ..."
        print(f"[{s.n}] {where}  (score {s.score:.4f})\n    {text}", file=out)


def ask(chain: RagChain, args: argparse.Namespace, out: TextIO) -> int:
    events = chain.stream(args.question, k=args.k, mode=args.retriever)
    if args.json:
        for event in events:
            if isinstance(event, Done):
                print(json.dumps(answer_json(event.answer), ensure_ascii=False), file=out)
        return 0
    said_abstain = False
    for event in events:
        if isinstance(event, Retrieved) and event.abstained:
            print(ABSTAIN_TEXT, end="", file=out, flush=True)
            said_abstain = True
        elif isinstance(event, Token):
            print(event.text, end="", file=out, flush=True)
        elif isinstance(event, Done):
            a = event.answer
            if a.abstained and not said_abstain:
                # The model itself said it does not know: follow its words with ours.
                print(f"\n{a.text}", end="", file=out)
            print(file=out)
            for quote in a.evidence:
                print(f"  from {_one_line(quote)}", file=out)
            _print_sources(a.sources, "Nearest passages" if a.abstained else "Sources", out)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.k is not None and args.k < 1:
        print(f"error: --k must be at least 1, got {args.k}", file=sys.stderr)
        return 2
    for what, value, fix in (
        ("the question", args.question, "check the terminal's encoding (LANG=C.UTF-8)"),
        ("--index", args.index, "rename the folder"),
    ):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            print(f"error: {what} '{printable(value)}' is not valid UTF-8 text; {fix}",
                  file=sys.stderr)
            return 2
    settings = settings_from_flags(k=args.k, retriever=args.retriever)
    if settings is None:
        return 2
    from rag.store import StoreError

    index_dir = resolve_index(settings, args.index)
    problem = index_error(settings, index_dir, args.index)
    if problem is not None:
        print(f"error: {problem[1]}", file=sys.stderr)
        return problem[0]
    try:
        chain = build_chain(settings, index_dir)
        return ask(chain, args, sys.stdout)
    except StoreError as e:  # damaged, locked mid-open, built with another encoder
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
