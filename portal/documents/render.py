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
