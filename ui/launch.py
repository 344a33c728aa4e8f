"""``rag ui``: start the Streamlit app in a subprocess.

Streamlit owns its server's event loop and reads its configuration at start-up, so the
app runs under ``python -m streamlit run`` rather than being imported; this module only
turns our flags and settings into that command line.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
from pathlib import Path

from ingest.collection import validate_name
from rag.settings import Settings
from ui.access import exposure_problem
from ui.collection import DEFAULT_COLLECTION

APP_PATH = Path(__file__).resolve().parent / "app.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="HTTP port of the app (default 8501)")
    parser.add_argument(
        "--address",
        default="localhost",
        help="interface to listen on (default localhost: this machine only; any other needs "
        "RAG_UI_PASSWORD)",
    )
    parser.add_argument(
        "--index",
        "--collection",
        dest="collection",
        default=DEFAULT_COLLECTION,
        help=f"collection the app opens first (default {DEFAULT_COLLECTION!r}; created if missing)",
    )


def streamlit_command(args: argparse.Namespace, settings: Settings) -> list[str]:
    # Streamlit's own upload limit is whole megabytes; ours (RAG_MAX_FILE_MB) is checked
    # again, exactly, when the file is saved.
    upload_mb = max(1, math.ceil(settings.max_file_mb))
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.headless",
        "true",
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.maxUploadSize",
        str(upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--collection",
        args.collection,
    ]


def run(args: argparse.Namespace) -> int:
    try:
        validate_name(args.collection)
        if not 0 < args.port < 65536:
            raise ValueError(f"--port {args.port} is not a TCP port (1-65535)")
        settings = Settings()
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        print(f"rag ui: {e}", file=sys.stderr)
        return 2
    problem = exposure_problem(args.address, settings)
    if problem is not None:
        print(f"rag ui: {problem}", file=sys.stderr)
        return 2
    print(f"docchat: http://{args.address}:{args.port}  (collection {args.collection!r}; Ctrl+C stops)")
    # The working directory is kept: relative settings paths (indexes/) mean the same thing
    # to the app as to the other `rag` commands. Streamlit reads ui/.streamlit/config.toml
    # next to the script by itself.
    proc = subprocess.Popen(streamlit_command(args, settings))
    # A service manager stops us with SIGTERM: pass it on, or Streamlit would be orphaned
    # and keep the port. (Ctrl+C already reaches both: same process group.)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue  # Streamlit got the same SIGINT; wait for it to shut down
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    parser = argparse.ArgumentParser(prog="rag ui", description="Open the docchat app in a browser.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
