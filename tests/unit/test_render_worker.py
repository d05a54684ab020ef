"""The render process (portal/documents/render.py): replaced when its memory passes the limit,
kept otherwise, and given back on request (a job worker does so after each job)."""
from __future__ import annotations

from portal.documents.render import RSS_LIMIT, _rss, _RenderWorker

HTML = "<!doctype html><p>One page.</p>"


def test_a_render_process_above_its_memory_limit_is_replaced_before_the_next_layout():
    worker = _RenderWorker(rss_limit=1)  # every process is above one byte
    try:
        assert worker.render(HTML, seconds=60).startswith(b"%PDF")
        assert worker._proc is None  # retired while idle, after its reply
        assert worker.render(HTML, seconds=60).startswith(b"%PDF")  # a fresh one lays it out
    finally:
        worker.release()


def test_a_render_process_under_its_limit_is_kept_and_release_stops_it():
    worker = _RenderWorker()
    try:
        worker.render(HTML, seconds=60)
        proc = worker._proc
        worker.render(HTML, seconds=60)
        assert worker._proc is proc and proc.is_alive()
    finally:
        worker.release()
    assert worker._proc is None and not proc.is_alive()


def _rss_of(pid: int) -> int:
    import os

    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_the_limit_is_above_what_a_fresh_render_process_holds_after_a_layout():
    # Measured in the render process itself, not in this test process (which, late in a full
    # run, holds far more than any render process and says nothing about the limit).
    worker = _RenderWorker()
    try:
        worker.render(HTML, seconds=60)
        assert 0 < _rss_of(worker._proc.pid) < RSS_LIMIT
        assert worker._proc.is_alive()  # not retired after one page
    finally:
        worker.release()


def test_rss_reads_this_process_memory():
    assert _rss() > 0
