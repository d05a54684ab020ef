"""Render archived documents to PDF with WeasyPrint from plain data.

The renderer fetches nothing: the only URLs a document may hold are ``data:`` URIs (signature
images), so a crafted name or note can never make the server read a file or call the network.
"""
from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML
from weasyprint.urls import URLFetcher

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


def _render_child(html: str, conn) -> None:  # runs in the child process
    try:
        conn.send(("ok", html_to_pdf(html)))
    except Exception as exc:  # the parent re-raises it as a message, never a hang
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def render_pdf_limited(template: str, context: dict, *, seconds: float) -> bytes:
    """``render_pdf`` in a forked child that is killed after ``seconds``, so a pathological
    layout (a 9,000-word section, an unbreakable line) cannot hang a web worker. Raises
    ``RenderTimeout``, or ``RuntimeError`` if the layout itself failed."""
    import multiprocessing

    html = render_html(template, context)
    # forkserver, not fork: web workers are threaded, and forking a threaded process can
    # deadlock. The server process imports WeasyPrint once; each render is a cheap fork of it.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["portal.documents.render"])
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_render_child, args=(html, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(seconds):
            raise RenderTimeout(f"The document took longer than {seconds:g} s to lay out.")
        status, payload = parent.recv()
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status != "ok":
        raise RuntimeError(f"The document could not be laid out ({payload}).")
    return payload
