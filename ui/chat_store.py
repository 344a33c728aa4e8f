"""Chats of a collection, kept on disk so a reload (or a restart) finds them again.

One SQLite file per collection (``indexes_dir/NAME/chats.sqlite``, beside the index and
the documents, so deleting a collection deletes its chats). WAL mode and a busy timeout
let several browser sessions (threads of one Streamlit process, or two processes) read
and write at once; every call opens its own short connection, so no connection is shared
between threads. Turns are stored as JSON rows carrying a format version, checked on
load; nothing is pickled.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.types import Source

CHATS_FILE = "chats.sqlite"
FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS turns (
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    format INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (chat_id, seq)
);
"""


class ChatStoreError(ValueError):
    """The chats file is unreadable or was written by a newer version."""


@dataclass
class Turn:
    """One question and its answer, as shown and as saved."""

    question: str
    answer: str
    abstained: bool
    sources: list[Source] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = ""  # retrieval mode, which says what the sources' scores are
    evidence: list[str] = field(default_factory=list)  # quoted sentences the answer rests on
    method: str = "generated"  # "extracted": the reader's span, with its sentence as evidence
    overruled: str = ""  # the decoder's reply, when it disagreed with the passage and was not shown
    stopped: bool = False  # the user stopped it while it was being written
    truncated: bool = False  # the decoder used its whole token budget (the answer was cut)
    error: str = ""  # why there is no answer (a model failed to load, the chain failed)
    timings: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @staticmethod
    def from_json(text: str) -> Turn:
        d: dict[str, Any] = json.loads(text)
        d["sources"] = [Source(**s) for s in d.get("sources", [])]
        return Turn(**d)


@dataclass(frozen=True)
class ChatInfo:
    id: str
    title: str
    created: float
    updated: float
    turns: int


class ChatStore:
    def __init__(self, collection_dir: Path) -> None:
        self.path = collection_dir / CHATS_FILE
        self._ready = False

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the transaction is begun below, IMMEDIATE, so two sessions
        # appending to one chat cannot both read the same last ``seq`` (a deferred
        # transaction takes the write lock only at its first write, too late for that).
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
                db.executescript(_SCHEMA)
                self._ready = True
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise ChatStoreError(f"cannot use the chats file {self.path}: {e}") from e
        finally:
            db.close()

    def chats(self) -> list[ChatInfo]:
        """Chats, most recently used first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(t.seq) FROM chats c "
                "LEFT JOIN turns t ON t.chat_id = c.id GROUP BY c.id ORDER BY c.updated DESC"
            ).fetchall()
        return [ChatInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def create(self, title: str = "New chat") -> str:
        chat_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO chats (id, title, created, updated) VALUES (?, ?, ?, ?)",
                (chat_id, clean_title(title), now, now),
            )
        return chat_id

    def exists(self, chat_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone() is not None

    def rename(self, chat_id: str, title: str) -> None:
        with self._db() as db:
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (clean_title(title), chat_id))

    def delete(self, chat_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def turns(self, chat_id: str) -> list[Turn]:
        with self._db() as db:
            rows = db.execute(
                "SELECT format, data FROM turns WHERE chat_id = ? ORDER BY seq", (chat_id,)
            ).fetchall()
        out = []
        for fmt, data in rows:
            if fmt != FORMAT:
                raise ChatStoreError(
                    f"the chats file {self.path} holds format {fmt}; this version reads {FORMAT}: "
                    "update docchat, or move the file aside to start without the old chats"
                )
            out.append(Turn.from_json(data))
        return out

    def add_turn(self, chat_id: str, turn: Turn) -> None:
        """Append a turn; a chat still called "New chat" is named after its first question."""
        with self._db() as db:
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO turns (chat_id, seq, format, data) VALUES (?, ?, ?, ?)",
                (chat_id, seq, FORMAT, turn.to_json()),
            )
            db.execute(
                "UPDATE chats SET updated = ?, title = CASE WHEN title = 'New chat' THEN ? ELSE title END "
                "WHERE id = ?",
                (time.time(), clean_title(turn.question), chat_id),
            )

    def replace_last_turn(self, chat_id: str, turn: Turn) -> None:
        """Regenerate: the chat's last answer is replaced by a new one."""
        with self._db() as db:
            db.execute(
                "UPDATE turns SET data = ?, format = ? WHERE chat_id = ? AND seq = "
                "(SELECT MAX(seq) FROM turns WHERE chat_id = ?)",
                (turn.to_json(), FORMAT, chat_id, chat_id),
            )
            db.execute("UPDATE chats SET updated = ? WHERE id = ?", (time.time(), chat_id))

    def options(self, chat_id: str) -> dict[str, Any]:
        """The answer settings last used in the chat ({} if none)."""
        with self._db() as db:
            row = db.execute("SELECT options FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if row is None:
            return {}
        value = json.loads(row[0])
        return value if isinstance(value, dict) else {}

    def save_options(self, chat_id: str, options: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute("UPDATE chats SET options = ? WHERE id = ?", (json.dumps(options), chat_id))


def clean_title(title: str) -> str:
    """One line of at most 60 characters ("New chat" when empty)."""
    line = " ".join(title.split())
    if len(line) > 60:
        line = line[:59].rstrip() + "…"
    return line or "New chat"
