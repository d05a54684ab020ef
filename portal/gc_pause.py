"""Pause Python's cyclic garbage collector while a request builds many small acyclic objects.

The fact loader and the claim-line derivation make about 240,000 frozen facts and lines for a
program-year. None of them form reference cycles, so reference counting frees them; but every
700 allocations the collector walks the young objects, and every few of those walks the older
ones too. Measured on bench/claim_lines.py's program-year (300 patients, 94,200 attendance rows):
load and derivation took about 3.0 s with the collector running and 2.2 s with it paused. (The
bench itself times with the collector paused, as ``timeit`` does, so its ratio does not show
this; the board, readiness pages and exports do.)

``collection_paused()`` turns the collector off for the block and, when the outermost block
ends, turns it back on and collects the youngest generation at once, so the cost of that one
walk is paid by the block that made the objects (not by whatever runs next). Nested and
concurrent blocks (web threads, job-worker threads) share one count: the collector comes back
on when the last one ends, and stays off if something else had turned it off before.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            resume = _depth == 0 and _was_enabled
            if resume:
                gc.enable()
        if resume:
            gc.collect(0)


def with_collection_paused(fn):
    """Decorator: run ``fn`` inside ``collection_paused()``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with collection_paused():
            return fn(*args, **kwargs)

    return wrapper
