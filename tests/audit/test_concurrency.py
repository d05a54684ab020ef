"""Many writers and hard crashes: seqs stay contiguous, one tree, no entry without its file."""

import multiprocessing as mp
import os
import random
import signal
import time

from sqlalchemy import create_engine, func, select

from audit_archive.filestore import FileStore
from audit_archive.ledger import sqlite_begin_immediate
from audit_archive.schema import audit_entries
from audit_archive.verify import verify_ledger

from .conftest import PG_URL
from .helpers import do_append, make_pdf

WRITERS, PER_WRITER = 8, 100


def _engine(url):
    eng = create_engine(url)
    return sqlite_begin_immediate(eng) if url.startswith("sqlite") else eng


def _writer(url, root, n, barrier, errors):
    try:
        eng = _engine(url)
        store = FileStore(root)
        pdf = make_pdf(f"writer {os.getpid()}")
        barrier.wait()
        do_append(eng, store, n, pdf=pdf)
        eng.dispose()
    except BaseException as exc:  # report to the parent, which asserts none happened
        errors.put(f"{type(exc).__name__}: {exc}")
        raise


def _url(backend, tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}" if backend == "sqlite" else PG_URL


def test_parallel_writers(engine, backend, tmp_path):
    url, root = _url(backend, tmp_path), tmp_path / "files"
    ctx = mp.get_context("fork")
    barrier, errors = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, root, PER_WRITER, barrier, errors)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    errs = []
    while not errors.empty():
        errs.append(errors.get())
    assert not errs, errs
    assert all(p.exitcode == 0 for p in procs)
    with engine.connect() as conn:
        seqs = list(conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq)).scalars())
        assert seqs == list(range(1, WRITERS * PER_WRITER + 1))
        rep = verify_ledger(conn, FileStore(root))
    assert rep.ok, rep.summary()
    assert rep.entries == WRITERS * PER_WRITER and not rep.unreferenced_files


def _crash_victim(url, root):
    eng = _engine(url)
    store = FileStore(root)
    pdf = make_pdf("victim")
    while True:
        do_append(eng, store, 1, pdf=pdf)


def test_sigkill_during_append(engine, backend, tmp_path):
    url, root = _url(backend, tmp_path), tmp_path / "files"
    store = FileStore(root)
    do_append(engine, store, 1)
    ctx = mp.get_context("fork")
    rng = random.Random(1234)
    engine.dispose()  # no pooled connections shared with forked children
    for round_ in range(20):
        p = ctx.Process(target=_crash_victim, args=(url, root))
        p.start()
        time.sleep(rng.uniform(0.01, 0.15))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        with engine.connect() as conn:
            rep = verify_ledger(conn, store)
            n = conn.execute(select(func.count()).select_from(audit_entries)).scalar()
        assert rep.ok, f"round {round_}: {rep.summary()}"
        assert rep.documents_checked == n
    # the ledger still accepts appends after all the crashes
    (r,) = do_append(engine, store, 1)
    assert r.seq == n + 1
