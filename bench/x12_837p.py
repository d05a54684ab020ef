"""Benchmark: 837P files for 300 patients for one month next to claim-line derivation alone.

Shape: ``bench/claim_lines.py``'s synthetic program, meeting Monday to Friday (two 90-minute
groups a day), 300 patients for 21 weekdays of one month: about 6,000 patient-day lines over
four payers; every patient has a subscriber address and a 40-unit authorization. Timings,
best of 3, in one run:

- baseline: ``derive_claim_lines`` for the month (what the board and the exports do anyway);
- ``derive_claim_lines`` + ``build_837p`` for each payer's ready lines (self-pay is never sent);
- their ratio (target <= 1.5x).

pyx12 is not timed: with ``--validate`` each file is checked once afterwards.
Run: ``.venv/bin/python bench/x12_837p.py [n_patients] [--validate]``.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.claim_lines as synthetic  # noqa: E402
from portal.rules.claim_lines import derive_claim_lines  # noqa: E402
from portal.rules.facts import AuthorizationFact  # noqa: E402
from portal.rules.x12_837p import (ControlNumbers, Receiver, Submitter,  # noqa: E402
                                   build_837p)

FIRST = date(2026, 11, 2)  # a Monday; 21 weekdays to Nov 30
DAYS = 29


def make_month(n_patients: int):
    synthetic.MEETING_WEEKDAYS = (0, 1, 2, 3, 4)
    program, patients, sessions, attendance, _auths, rulebook = synthetic.make_synthetic(
        n_patients, DAYS, FIRST)
    program = replace(program, postal_code="627011234", taxonomy="261QR0405X",
                      contact_name="Billing Office", contact_phone="2175550100")
    patients = [replace(p, address_line=f"{100 + i} Elm St", city="Springfield", state="IL",
                        postal_code="62701", sex="FMU"[i % 3], dob=date(1980, 1, 1 + i % 28),
                        last_name=f"Last{i}", first_name=f"First{i}")
                for i, p in enumerate(patients)]
    auths = [AuthorizationFact(p.patient_id, f"IOP-{p.patient_id:05d}", FIRST, date(2026, 12, 31), 40)
             for p in patients]
    return (program, patients, sessions, attendance, auths), rulebook


def build_all(args, rulebook) -> dict[str, str]:
    lines = derive_claim_lines(*args, rulebook)
    program, patients = args[0], args[1]
    by_payer: dict[str, list] = {}
    for ln in lines:
        if ln.status == "ready" and ln.payer_key != "self_pay":
            by_payer.setdefault(ln.payer_key, []).append(ln)
    out = {}
    for n, (key, items) in enumerate(sorted(by_payer.items()), start=1):
        payer = rulebook.payer(key)
        out[key] = build_837p(items, patients, program, payer,
                              Submitter("SYNTH01", program.name, program.contact_name, program.contact_phone),
                              Receiver(payer.payer_id, payer.name), ControlNumbers(n, n, n),
                              datetime(2026, 12, 1, 9, 0))
    return out


def main(argv: list[str]) -> None:
    n = int(next((a for a in argv if a.isdigit()), 300))
    args, rulebook = make_month(n)
    base, lines = synthetic._best_of(lambda: derive_claim_lines(*args, rulebook))
    full, files = synthetic._best_of(lambda: build_all(args, rulebook))
    ready = sum(1 for ln in lines if ln.status == "ready" and ln.payer_key != "self_pay")
    print(f"837P for {n} patients, {FIRST:%B %Y}: {len(lines):,} lines derived, {ready:,} ready "
          f"and sent in {len(files)} files ({sum(len(t) for t in files.values()):,} bytes)")
    print(f"  baseline derive_claim_lines        {base:8.1f} ms")
    print(f"  derive + build_837p (every payer)  {full:8.1f} ms")
    ratio = full / base
    print(f"  ratio {ratio:.2f}x (target <= 1.5x) {'OK' if ratio <= 1.5 else 'OVER TARGET'}")
    if "--validate" in argv:
        from tests.x12_check import assert_valid_837p
        for key, text in files.items():
            assert_valid_837p(text)
            print(f"  pyx12: {key} OK")


if __name__ == "__main__":
    main(sys.argv[1:])
