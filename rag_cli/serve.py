"""``rag serve [--port] [--address]``: the HTTP API (OpenAI-compatible chat, search, uploads).

Listens on 127.0.0.1 unless told otherwise. Anywhere else the documents would be open to
the network, so a token (RAG_API_TOKEN) is then required, and the server refuses to start
without one.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_PORT = 8000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--address", default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1: this machine only; any other needs RAG_API_TOKEN)",
    )


def check(args: argparse.Namespace) -> str | None:
    """Why the server must not start with these flags and settings, or None."""
    from rag.settings import Settings, describe_error, is_loopback

    if not 0 < args.port < 65536:
        return f"--port {args.port} is not a TCP port (1-65535)"
    try:
        settings = Settings()
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        return f"invalid setting: {describe_error(e)}"
    if not is_loopback(args.address) and settings.api_token is None:
        return (f"listening on {args.address} opens your documents to the network: set RAG_API_TOKEN "
                "to a secret clients must send, or use --address 127.0.0.1")
    return None


def run(args: argparse.Namespace) -> int:
    problem = check(args)
    if problem is not None:
        print(f"rag serve: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    from api.app import create_app
    from rag.settings import Settings

    print("rag serve: loading the models…", file=sys.stderr, flush=True)
    app = create_app(Settings(), bind_address=args.address)
    print(f"docchat API: http://{args.address}:{args.port}/v1  (docs: /docs; Ctrl+C stops)",
          file=sys.stderr, flush=True)
    # One process, one event loop: the models are loaded once and shared by every request.
    uvicorn.run(app, host=args.address, port=args.port, log_level="warning", workers=1)
    return 0
