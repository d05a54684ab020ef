"""Append cost on SQLite, and render+stamp+append vs a bare WeasyPrint render.

    .venv/bin/python bench/archive_append.py [N]

(1) median ms to append an already-rendered 1-page PDF: BEGIN IMMEDIATE, stamp, fsynced file
    write, INSERT, COMMIT (target < 40 ms);
(2) a 2-page 25-row roster: WeasyPrint render alone vs render + append (target < 1.5x).
"""

import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine  # noqa: E402
from weasyprint import HTML  # noqa: E402

from audit_archive.filestore import FileStore  # noqa: E402
from audit_archive.ledger import append, sqlite_begin_immediate  # noqa: E402
from audit_archive.schema import create_tables  # noqa: E402

# 1x1 PNG standing in for a signature image
SIG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def roster_html(rows: int) -> str:
    trs = "".join(f"<tr><td>{i}</td><td>Patient {i} Lastname</td><td>present</td><td>09:00</td><td>12:00</td>"
                  f"<td><img src='{SIG}' style='width:120px;height:36px'></td></tr>" for i in range(rows))
    return (f"<html><head><style>@page{{size:letter;margin:1.5cm}} td{{border:1px solid #999;padding:9px}}</style></head>"
            f"<body><h1>Group roster - IOP morning</h1><table>{trs}</table><p>Attested by facilitator.</p></body></html>")


def main(n: int = 200) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="archive-append-"))
    engine = sqlite_begin_immediate(create_engine(f"sqlite:///{tmp / 'ledger.db'}"))
    with engine.begin() as conn:
        create_tables(conn)
    store = FileStore(tmp / "files")
    one_page = HTML(string=roster_html(5)).write_pdf()
    when = datetime.now(timezone.utc)

    def do(pdf, i):
        with engine.begin() as conn:
            append(conn, store, kind="roster", subject={"roster_id": str(i)}, actor="user:1",
                   record={"roster_id": str(i)}, pdf_bytes=pdf, occurred_at=when,
                   verify_base_url="https://portal.example.org", origin="portal.example.org/audit")

    times = []
    for i in range(n):
        t = time.perf_counter()
        do(one_page, i)
        times.append((time.perf_counter() - t) * 1000)
    print(f"append 1-page PDF: median {statistics.median(times):.1f} ms, p90 "
          f"{statistics.quantiles(times, n=10)[-1]:.1f} ms over {n} (target < 40 ms)")

    html = roster_html(25)
    pages = None
    render, full = [], []
    for i in range(12):
        t = time.perf_counter()
        doc = HTML(string=html).render()
        pdf = doc.write_pdf()
        render.append(time.perf_counter() - t)
        pages = len(doc.pages)
        t = time.perf_counter()
        pdf = HTML(string=html).write_pdf()
        do(pdf, 10_000 + i)
        full.append(time.perf_counter() - t)
    r, f = statistics.median(render[2:]), statistics.median(full[2:])
    print(f"25-row roster ({pages} pages): render {r * 1000:.1f} ms, render+stamp+append {f * 1000:.1f} ms, "
          f"ratio {f / r:.2f}x (target < 1.5x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
