"""`rag ingest | ask | eval | ui | serve`.

Each subcommand's module owns its flags (``add_arguments``) and its work (``run``); this
module only dispatches, so the library packages never import the command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# Subcommand -> module providing add_arguments(parser) and run(args) -> int. Imported on
# use, so `rag ingest --help` does not pay for importing the Streamlit app.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("rag_cli.ingest", "Build or update an index from a folder of documents."),
    "ask": ("rag_cli.ask", "Answer a question from an index, with sources."),
    "eval": ("rag_cli.eval", "Measure retrieval (and answer) quality on a QA file."),
    "ui": ("ui.launch", "Start the chat app in the browser."),
    "serve": ("rag_cli.serve", "Serve the HTTP API (OpenAI-compatible chat, search, uploads)."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Chat with your documents, locally. Settings: RAG_* variables "
        "(see README)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Models ship inside installed packages; never let a library reach for the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    run = importlib.import_module(args._module).run
    try:
        return int(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
