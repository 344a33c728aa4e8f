"""How a pipeline stage is run over many items: the seam for distributed ingestion.

The pipeline only needs ``map(fn, items) -> Iterator``; results may come back in any
order (each result names its item), which lets a slow 2,000-page PDF not hold back the
rest. A Ray implementation would wrap ``ray.data`` or remote tasks behind the same method.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import islice
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class StageRunner(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to every item; yield results as they finish (order not guaranteed).

        ``fn`` must be a module-level function and items/results plain data, so they can
        travel to another process or machine.
        """
        ...


class SerialRunner:
    """Runs in the calling process: for tests, tiny jobs and debugging."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)


class ProcessPoolRunner:
    """A local process pool with a bounded number of items in flight.

    Bounded, because results (whole parsed documents) would otherwise pile up in memory
    while the embedding stage, the slower consumer, works through them.
    """

    def __init__(self, workers: int = 0, in_flight_per_worker: int = 2) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.in_flight = max(1, self.workers * in_flight_per_worker)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        # "spawn": the parent may hold torch threads and CUDA state, which fork would copy
        # into the workers in an inconsistent state (hangs are the classic symptom).
        # subtle: spawned workers re-import the parent's __main__ module (not its
        # `if __name__ == "__main__"` block), so scripts using this should import heavy
        # things (torch, models) inside functions.
        ctx = multiprocessing.get_context("spawn")
        it = iter(items)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                   initializer=_ignore_sigint)
        try:
            pending: set[Future[R]] = {pool.submit(fn, x) for x in islice(it, self.in_flight)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                # Refill first, so the workers stay busy while the consumer handles results.
                for _ in done:
                    nxt = next(it, _END)
                    if nxt is not _END:
                        pending.add(pool.submit(fn, nxt))  # type: ignore[arg-type]
                for fut in done:
                    yield fut.result()
        finally:
            # On an error or Ctrl-C in the consumer, do not wait for queued work.
            pool.shutdown(wait=True, cancel_futures=True)


_END = object()


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group; only the parent should handle it (and shut
    # the pool down), instead of every worker printing its own KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_runner(workers: int, n_items: int) -> StageRunner:
    """A process pool when it pays off; in-process for one item or one worker.

    Starting worker processes costs about a second (each imports the parsers), more than
    parsing a handful of small files takes.
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or n_items <= 1:
        return SerialRunner()
    return ProcessPoolRunner(min(workers, n_items))
