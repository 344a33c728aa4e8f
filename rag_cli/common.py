"""What more than one command checks the same way."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rag.text import printable

if TYPE_CHECKING:
    from rag.settings import Settings


def index_error(settings: Settings, index_dir: Path, given: str) -> tuple[int, str] | None:
    """(exit status, one-line error) when there is no usable index at ``index_dir`` (a folder
    or, with RAG_STORE, a Milvus collection); None when there is one. ``given`` is what the
    user typed, repeated in the command that builds the index."""
    # Imported here: `rag --help` imports the commands, and the store pulls in FAISS.
    from rag.store import StoreError
    from rag.store.backends import store_exists

    try:
        if store_exists(settings, index_dir):
            return None
    except StoreError as e:  # damaged, unreachable server
        return 1, str(e)
    what = " (that is a file, not a folder)" if index_dir.is_file() else ""
    return 2, (f"no index at {printable(index_dir)}{what}; build one first with "
               f"`rag ingest FOLDER --index {printable(given)}`")


def settings_from_flags(**flags: object) -> Settings | None:
    """The environment's settings with the flags given on top, or None once the reason they
    are invalid was printed (one line naming the variable, the value and why)."""
    from rag.settings import Settings, describe_error

    try:
        return Settings.from_flags(**flags)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        print(f"error: invalid setting: {describe_error(e)}", file=sys.stderr)
        return None
