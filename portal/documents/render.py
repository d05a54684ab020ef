"""Render archived documents to PDF with WeasyPrint from plain data.

The renderer fetches nothing: the only URLs a document may hold are ``data:`` URIs (signature
images), so a crafted name or note can never make the server read a file or call the network.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from portal.wording import count_noun

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


class _DataOnlyFetcher(URLFetcher):
    def __init__(self):
        super().__init__(allowed_protocols={"data"}, fail_on_errors=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plain(value) -> str:
    """A record value as words: lists and nested records become short readable text rather
    than Python syntax (extracts show stored records to people)."""
    if isinstance(value, dict):
        if "message" in value:
            return str(value["message"])
        return ", ".join(f"{k.replace('_', ' ')}: {plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(plain(v) for v in value)
    return str(value)


_env.filters["png_data_uri"] = png_data_uri
_env.filters["plain"] = plain
_env.filters["count_noun"] = count_noun


def render_html(template: str, context: dict) -> str:
    """Render ``templates/<template>`` (e.g. "documents/roster.html") with plain ``context``."""
    return _env.get_template(template).render(**context)


def html_to_pdf(html: str) -> bytes:
    """Lay out ``html`` as PDF bytes. No base URL, data: URIs only."""
    return HTML(string=html, url_fetcher=_DataOnlyFetcher()).write_pdf()


def render_pdf(template: str, context: dict) -> bytes:
    """``render_html`` then ``html_to_pdf``."""
    return html_to_pdf(render_html(template, context))


class RenderTimeout(RuntimeError):
    """Laying out the document took longer than the limit; nothing was produced."""


#: A render process whose resident memory is above this after a layout is replaced before the
#: next one. Each layout leaves some of WeasyPrint's caches and allocator arenas behind (about
#: 1 MB a document, bench/audit_file.py), so a long-lived process would otherwise keep growing
#: with every roster, note and audit-file extract it lays out.
RSS_LIMIT = 320 * 1024 * 1024


def _rss() -> int:
    """This process's resident memory in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _render_loop(conn, rss_limit: int) -> None:  # runs in the render worker process
    while True:
        try:
            html = conn.recv()
        except EOFError:
            return
        try:
            reply = ("ok", html_to_pdf(html))
        except Exception as exc:  # the parent re-raises it as a message, never a hang
            reply = ("error", f"{type(exc).__name__}: {exc}")
        del html
        # The third item asks the parent to replace this process (memory above the limit); it
        # is decided here, idle, so the parent never sends a document to a process that quits.
        conn.send((*reply, _rss() > rss_limit))
        del reply


class _RenderWorker:
    """One long-lived worker process that lays out PDFs (warm fonts: a note renders in a
    fraction of a second). A layout over the time limit kills it; the next render starts a
    new one. Renders in one web process are serialized through it."""

    def __init__(self, rss_limit: int = RSS_LIMIT):
        import threading

        self.rss_limit = rss_limit
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None

    def _start(self):
        import multiprocessing

        # forkserver, not fork: web workers are threaded, and forking a threaded process can
        # deadlock. The server imports WeasyPrint once; the worker is a fork of it.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["portal.documents.render"])
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_render_loop, args=(child, self.rss_limit), daemon=True,
                                 name="pdf-render")
        self._proc.start()
        child.close()
        self._conn = parent

    def _stop(self):
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def render(self, html: str, seconds: float) -> bytes:
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._stop()
                self._start()
            try:
                self._conn.send(html)
                if not self._conn.poll(seconds):
                    self._stop()
                    raise RenderTimeout(f"The document took longer than {seconds:g} s to lay out.")
                status, payload, retire = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._stop()
                raise RuntimeError("The PDF renderer stopped unexpectedly; nothing was saved.") from exc
            if retire:
                self._stop()  # idle and above RSS_LIMIT: the next render starts a fresh one
        if status != "ok":
            raise RuntimeError(f"The document could not be laid out ({payload}).")
        return payload


    def release(self) -> None:
        """Stop the render process now (it is idle between renders); the next render starts
        a fresh one."""
        with self._lock:
            self._stop()


_worker = _RenderWorker()


def release_renderer() -> None:
    """Give back the render process's memory: a job worker calls this after each job, so
    what one job's layouts left behind is not carried into the next (bench/audit_file.py
    measures the worker's memory across consecutive audit files)."""
    _worker.release()


def render_pdf_limited(template: str, context: dict, *, seconds: float) -> bytes:
    """``render_pdf`` in a worker process that is killed after ``seconds``, so a pathological
    layout (a 9,000-word section, an unbreakable line) cannot hang a web worker. Raises
    ``RenderTimeout``, or ``RuntimeError`` if the layout itself failed."""
    return _worker.render(render_html(template, context), seconds)
