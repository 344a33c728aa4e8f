"""How a pipeline stage is run over many items: the seam for distributed ingestion.

The pipeline only needs ``map(fn, items, on_failure) -> Iterator``; results may come back
in any order (each result names its item), which lets a slow 2,000-page PDF not hold back
the rest. A Ray implementation would wrap ``ray.data`` or remote tasks behind the same
method.

Parsers run on files from anywhere: a 17 KB PDF can keep PDFium busy for minutes, a
crafted stream can inflate to gigabytes, a C library can crash. So ``ProcessPoolRunner``
runs each item in a worker process under ``Limits`` (time per item, address space per
worker), kills and replaces a worker that overruns or dies, and reports that one item as
failed (``on_failure``); the run goes on. Workers die with the parent, even on kill -9.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

FailureFn = Callable[[T, str], R]


class StageRunner(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_failure: Callable[[T, str], R]) -> Iterator[R]:
        """Apply ``fn`` to every item; yield results as they finish (order not guaranteed).

        ``fn`` must be a module-level function and items/results plain data, so they can
        travel to another process or machine. An item whose run fails outside ``fn``'s
        control (a time or memory limit, a crash) yields ``on_failure(item, reason)``.
        """
        ...


@dataclass(frozen=True)
class Limits:
    """What one item may cost in a worker; 0 = no limit."""

    timeout_s: float = 0.0
    memory_mb: int = 0


class SerialRunner:
    """Runs in the calling process, without limits: for tests, tiny jobs and debugging."""

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_failure: Callable[[T, str], R]) -> Iterator[R]:
        for item in items:
            yield fn(item)


class _Worker:
    """One worker process and the item it is working on (if any)."""

    def __init__(self, ctx: Any, fn: Callable[[Any], Any], limits: Limits) -> None:
        self.conn, child = ctx.Pipe()
        self.proc: BaseProcess = ctx.Process(
            target=_worker_main, args=(child, fn, limits.memory_mb, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.item: Any = None
        self.busy = False
        # subtle: the clock of the first item starts when the worker says it is ready, not
        # when it was spawned: on a loaded machine starting Python and importing the
        # parsers can take longer than a small time limit, and must not fail a text file.
        self.ready = False
        self.timeout_s = 0.0
        self.deadline = float("inf")

    def send(self, item: Any, timeout_s: float) -> None:
        self.item, self.busy, self.timeout_s = item, True, timeout_s
        self.deadline = time.monotonic() + (timeout_s if self.ready else _STARTUP_S)
        if timeout_s <= 0 and self.ready:
            self.deadline = float("inf")
        self.conn.send(item)

    def started(self) -> None:
        self.ready = True
        if self.busy:
            self.deadline = (time.monotonic() + self.timeout_s if self.timeout_s > 0
                             else float("inf"))

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class ProcessPoolRunner:
    """Local worker processes, one item each at a time, under ``limits``.

    Not ``concurrent.futures``: its pool cannot stop one task, and a dead worker breaks
    the whole pool. One item in flight per worker bounds memory (results are whole parsed
    documents, and the embedding stage, the slower consumer, works through them).
    """

    def __init__(self, workers: int = 0, limits: Limits | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.limits = limits or Limits()

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_failure: Callable[[T, str], R]) -> Iterator[R]:
        # "spawn": the parent may hold torch threads and CUDA state, which fork would copy
        # into the workers in an inconsistent state (hangs are the classic symptom).
        # subtle: spawned workers re-import the parent's __main__ module (not its
        # `if __name__ == "__main__"` block), so scripts using this should import heavy
        # things (torch, models) inside functions.
        ctx = multiprocessing.get_context("spawn")
        it = iter(items)
        workers: list[_Worker] = []
        timeout = self.limits.timeout_s
        try:
            for _ in range(self.workers):
                item = next(it, _END)
                if item is _END:
                    break
                w = _Worker(ctx, fn, self.limits)
                workers.append(w)
                w.send(item, timeout)
            while any(w.busy for w in workers):
                busy = [w for w in workers if w.busy]
                wait_s = min(w.deadline for w in busy) - time.monotonic()
                ready = wait([x for w in busy for x in (w.conn, w.proc.sentinel)],
                             timeout=None if wait_s == float("inf") else max(0.0, wait_s))
                for w in busy:
                    result = self._collect(w, ready, on_failure)
                    if result is _NOTHING:
                        continue
                    # Refill first, so the worker stays busy while the consumer works.
                    nxt = next(it, _END)
                    if w.conn.closed:  # killed: a fresh worker for the rest
                        workers.remove(w)
                        if nxt is not _END:
                            w = _Worker(ctx, fn, self.limits)
                            workers.append(w)
                    if nxt is not _END:
                        w.send(nxt, timeout)
                    yield result  # type: ignore[misc]
        finally:
            # On an error or Ctrl-C in the consumer, do not wait for work in progress.
            for w in workers:
                if w.busy:
                    w.kill()
                else:
                    w.stop()

    def _collect(self, w: _Worker, ready: list[Any], on_failure: Callable[[Any, str], Any]
                 ) -> Any:
        """The result of ``w``'s item if it has one now (a failure counts), else _NOTHING."""
        item = w.item
        # subtle: ``ready`` was taken before the consumer last ran (the embedding stage, which
        # can take longer than the time limit per document); a result that came in since is
        # waiting in the pipe and must be taken, not mistaken for a timeout.
        if w.conn in ready or w.conn.poll():
            try:
                status, value = w.conn.recv()
            except (EOFError, OSError):
                status, value = "died", None
            if status == "ready":
                w.started()
                return _NOTHING
            if status == "ok":
                w.busy = False
                return value
            if status == "error":
                w.busy = False
                return on_failure(item, str(value))
        elif w.proc.sentinel not in ready and time.monotonic() < w.deadline:
            return _NOTHING
        w.busy = False
        if time.monotonic() >= w.deadline and w.proc.is_alive():
            w.kill()
            if not w.ready:
                return on_failure(item, f"the parser process did not start within "
                                  f"{_STARTUP_S:g} s; the file was skipped")
            return on_failure(item, f"timed out after {self.limits.timeout_s:g} s (the limit is "
                              "RAG_PARSE_TIMEOUT_S); the file was skipped")
        w.kill()
        return on_failure(item, _death_reason(w.proc.exitcode, self.limits.memory_mb))


_END = object()
_NOTHING = object()
#: How long a new worker may take to start (Python, the parser imports) before its item
#: fails; separate from the per-item limit, which starts once the worker is ready.
_STARTUP_S = 120.0


def _death_reason(exitcode: int | None, memory_mb: int) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit status {exitcode}"
    limit = f" or it ran out of memory (limit {memory_mb} MB: RAG_PARSE_MEMORY_MB)" if memory_mb \
        else ""
    return f"the parser crashed ({how}){limit}; the file was skipped"


# --- the worker side ---------------------------------------------------------------------


def _worker_main(conn: Connection, fn: Callable[[Any], Any], memory_mb: int,
                 parent: int) -> None:
    _die_with_parent(parent)
    # Ctrl-C goes to the whole process group; only the parent should handle it (and stop
    # the workers), instead of every worker printing its own KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_mb > 0:
        import resource

        limit = memory_mb << 20
        with contextlib.suppress(ValueError, OSError):  # a lower hard limit wins
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", None))
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(item))
        except MemoryError:
            reply = ("error", f"needs more memory than the limit ({memory_mb} MB: "
                              "RAG_PARSE_MEMORY_MB); the file was skipped")
        except Exception as e:  # fn reports expected problems itself; this is a bug
            reply = ("error", f"parser error ({type(e).__name__}: {e})")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", "its text is too large to hand back within the memory limit"))


def _die_with_parent(parent: int) -> None:
    """Make sure this worker does not outlive the parent (kill -9, OOM killer, crash)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    # Elsewhere (and as a second line): notice re-parenting.

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def make_runner(workers: int, n_items: int, limits: Limits | None = None) -> StageRunner:
    """Worker processes, never fewer than one: limits can only be enforced on another
    process (a stuck C parser cannot be interrupted in our own). Starting a worker costs
    a fraction of a second, paid once per run.
    """
    workers = workers or os.cpu_count() or 1
    return ProcessPoolRunner(max(1, min(workers, n_items)), limits)
