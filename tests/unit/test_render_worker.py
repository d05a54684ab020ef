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


def test_the_limit_is_above_what_a_fresh_process_holds():
    assert 0 < _rss() < RSS_LIMIT
